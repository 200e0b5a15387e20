/** `prunespace distill`: label-free compression of a trained model to a FLOPs target or pruning rate, saved without fine-tuning. */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, basename } from 'node:path';
import { Option, type Command } from 'commander';
import { complexity } from '../../complexity/count.js';
import { distill, type DistillEpoch, type DistillSettings } from '../../pruning/distill/distill.js';
import { DEFAULT_WEIGHTS } from '../../pruning/distill/losses.js';
import { loadParent } from '../../pruning/distill/parent.js';
import { materialise, saveMaterialised } from '../../pruning/distill/save.js';
import { DATASETS, loadData } from '../../training/data/load.js';
import { startBackend } from '../../training/trial.js';
import { evaluate } from '../../training/train.js';
import { UserError } from '../../util/errors.js';
import { formatCount } from '../../util/format.js';
import { intFlag, numberFlag } from '../parse.js';
import type { TrainingFlags } from '../training-flags.js';
import { ENGINE_CHOICES } from '../../training/engine-names.js';

/** The data, optimiser and engine flags mean what they mean for `train`; distill declares them with its own defaults. */
type SharedFlags = Pick<TrainingFlags, 'data' | 'dataDir' | 'subset' | 'valFraction' | 'syntheticSamples' | 'augment' | 'steps' | 'batch' | 'lr' | 'momentum' | 'nesterov' | 'weightDecay' | 'backend' | 'threads'>;

interface Options extends SharedFlags {
  parent: string;
  flops?: number;
  rate?: number;
  students: number;
  epochs: number;
  temperature: number;
  lambdaLogits: number;
  lambdaFeatures: number;
  lambdaMutual: number;
  lambdaSparsity: number | 'auto';
  reselectEvery: number;
  sensitivityBatches: number;
  bnBatches: number;
  valBatches?: number;
  seed: number;
  evaluate?: boolean;
  json?: boolean;
  out: string;
}

export const sparsityFlag = (value: string): number | 'auto' => (value === 'auto' ? 'auto' : numberFlag('--lambda-sparsity', { min: 0 })(value));

/** The output directory must not hold anything yet: a run never overwrites earlier results. */
function checkOut(out: string): void {
  if (existsSync(out) && readdirSync(out).length > 0) throw new UserError(`--out ${out} already exists and is not empty; choose another directory`);
}

function epochLines(e: DistillEpoch, epochs: number, groups: string[], parentFlops: number): string[] {
  return e.students.flatMap((s, i) => [
    `epoch ${e.epoch}/${epochs} student ${i + 1}: loss ${s.loss.toFixed(4)} (logits ${s.parts.logits.toFixed(4)}, features ${s.parts.features.toFixed(4)}, ` +
      `mutual ${s.parts.mutual.toFixed(4)})  val distill ${s.valDistill.toFixed(4)}  projected FLOPs ${formatCount(s.projectedFlops)} ` +
      `(${((100 * s.projectedFlops) / parentFlops).toFixed(1)}%)  λs ${s.lambdaS.toPrecision(3)}  ${e.seconds.toFixed(1)}s`,
    `  zero/chosen per group: ${groups.map((g, k) => `${g} ${s.zero[k]}/${s.chosen[k]}`).join(', ')}`,
  ]);
}

export function registerDistill(program: Command): void {
  program
    .command('distill')
    .description('Compress a trained prunespace model without labels: distillation, mutual learning, Taylor-chosen ISTA sparsity; saves the pruned model without fine-tuning')
    .requiredOption('--parent <dir>', 'the trained model (a directory saved by prunespace: model.json, prunespace.json)')
    .option('--flops <F>', "FLOPs target: a fraction of the parent's FLOPs if <= 1 (as in prune), else an absolute count", numberFlag('--flops', { above: 0 }))
    .option('--rate <R>', 'pruning rate: the fraction of all channels to remove, in [0, 1)', numberFlag('--rate', { min: 0, max: 0.999999 }))
    .option('--students <n>', 'students distilled side by side (mutual learning needs 2 or more)', intFlag('--students', { min: 1 }), 2)
    .addOption(new Option('--epochs <n>', 'distillation epochs').argParser(intFlag('--epochs', { min: 1 })).makeOptionMandatory())
    .option('--steps <n>', 'step budget; ends at whichever of epochs or steps comes first', intFlag('--steps', { min: 1 }))
    .option('--batch <n>', 'batch size', intFlag('--batch', { min: 1 }), 128)
    .option('--lr <x>', 'constant learning rate (the ISTA threshold is lr x lambda-sparsity per step)', numberFlag('--lr', { above: 0 }), 0.01)
    .option('--momentum <m>', 'SGD momentum', numberFlag('--momentum', { min: 0, max: 0.999 }), 0.9)
    .option('--nesterov', 'Nesterov momentum', false)
    .option('--weight-decay <w>', 'L2 weight decay on conv and linear kernels', numberFlag('--weight-decay', { min: 0 }), 5e-4)
    .option('--temperature <T>', 'softmax temperature of the logit and mutual terms', numberFlag('--temperature', { above: 0 }), DEFAULT_WEIGHTS.temperature)
    .option('--lambda-logits <x>', 'weight of logit distillation from the teacher', numberFlag('--lambda-logits', { min: 0 }), DEFAULT_WEIGHTS.logits)
    .option('--lambda-features <x>', 'weight of masked feature matching at stage outputs', numberFlag('--lambda-features', { min: 0 }), DEFAULT_WEIGHTS.features)
    .option('--lambda-mutual <x>', 'weight of mutual learning between students', numberFlag('--lambda-mutual', { min: 0 }), DEFAULT_WEIGHTS.mutual)
    .option('--lambda-sparsity <x|auto>', 'weight of the sparsity penalty; auto: chosen channels reach zero halfway', sparsityFlag, DEFAULT_WEIGHTS.sparsity)
    .option('--reselect-every <steps>', 'steps between Taylor re-selections of the channels to sparsify', intFlag('--reselect-every', { min: 1 }), 100)
    .option('--sensitivity-batches <n>', 'batches whose Taylor sensitivities are summed at each selection', intFlag('--sensitivity-batches', { min: 1 }), 4)
    .option('--bn-batches <n>', 'batches that re-estimate BN statistics before evaluation and saving', intFlag('--bn-batches', { min: 1 }), 16)
    .option('--val-batches <n>', 'validation batches of the label-free validation loss (default: the whole validation split)', intFlag('--val-batches', { min: 1 }))
    .addOption(new Option('--data <name>', 'dataset (its labels are never read)').choices([...DATASETS]).makeOptionMandatory())
    .option('--data-dir <dir>', 'dataset directory')
    .option('--subset <fraction>', 'fraction of the training split to use', numberFlag('--subset', { above: 0, max: 1 }))
    .option('--val-fraction <fraction>', 'fraction of the training set held out for validation (default 0.1)', numberFlag('--val-fraction', { above: 0, max: 0.9 }))
    .option('--synthetic-samples <n>', 'synthetic data only: training images (default 1024)', intFlag('--synthetic-samples', { min: 2 }))
    .option('--no-augment', 'turn off augmentation')
    .addOption(new Option('--backend <name>', 'auto: torch, else tensorflow, else wasm, else cpu').choices(ENGINE_CHOICES).default('auto'))
    .option('--threads <n>', 'torch: intra-op threads', intFlag('--threads', { min: 1 }))
    .option('--seed <s>', 'seed of data order, augmentation and side batches', intFlag('--seed', { min: 0 }), 0)
    .option('--evaluate', "after saving, report the pruned model's test error (the only place labels are read, never in training)")
    .option('--json', 'print the result as JSON on stdout (progress on stderr)')
    .requiredOption('--out <dir>', 'where to save the pruned model (must not exist or be empty)')
    .action(async (opts: Options) => {
      const say = (line: string): void => void (opts.json ? process.stderr : process.stdout).write(line + '\n');
      if ((opts.flops === undefined) === (opts.rate === undefined)) throw new UserError('give exactly one of --flops and --rate');
      if (opts.syntheticSamples !== undefined && opts.data !== 'synthetic') throw new UserError('--synthetic-samples applies to --data synthetic only');
      checkOut(opts.out);
      const backend = await startBackend(opts.backend, opts.threads);
      say(`backend: ${backend.reason}`);
      const parent = await loadParent(opts.parent);
      const { spec } = parent;
      const parentComplexity = complexity(spec, parent.widths);
      const parentFlops = parentComplexity.flops;
      const data = loadData(
        { name: opts.data, augment: opts.augment, ...(opts.dataDir ? { dir: opts.dataDir } : {}), ...(opts.subset ? { subset: opts.subset } : {}), ...(opts.valFraction ? { valFraction: opts.valFraction } : {}), ...(opts.syntheticSamples ? { samples: opts.syntheticSamples } : {}) },
        { shape: spec.ref.input, classes: spec.ref.classes },
      );
      if (data.shape.join('x') !== spec.ref.input.join('x') || data.classes !== spec.ref.classes) {
        throw new UserError(`--data ${opts.data} has ${data.shape.join('x')} images and ${data.classes} classes, the parent takes ${spec.ref.input.join('x')} and ${spec.ref.classes}`);
      }
      let target: DistillSettings['target'];
      if (opts.flops !== undefined) {
        const flops = opts.flops <= 1 ? opts.flops * parentFlops : opts.flops;
        if (flops >= parentFlops) throw new UserError(`--flops ${opts.flops}: the parent already has ${formatCount(parentFlops)} FLOPs, at or below the target ${formatCount(flops)}`);
        target = { flops };
      } else {
        target = { rate: opts.rate! };
      }
      const settings: DistillSettings = {
        students: opts.students,
        epochs: opts.epochs,
        ...(opts.steps ? { steps: opts.steps } : {}),
        batchSize: opts.batch,
        lr: opts.lr,
        optimizer: { momentum: opts.momentum, nesterov: opts.nesterov, weightDecay: opts.weightDecay },
        weights: { logits: opts.lambdaLogits, features: opts.lambdaFeatures, mutual: opts.lambdaMutual, sparsity: opts.lambdaSparsity, temperature: opts.temperature },
        target,
        reselectEvery: opts.reselectEvery,
        sensitivityBatches: opts.sensitivityBatches,
        bnBatches: opts.bnBatches,
        ...(opts.valBatches ? { valBatches: opts.valBatches } : {}),
        augment: opts.augment,
      };
      say(
        `parent: ${spec.ref.family} ${spec.ref.input.join('x')} widths ${parent.widths.join(',')}, ${formatCount(parentFlops)} FLOPs; target ` +
          ('flops' in target ? `${formatCount(target.flops)} FLOPs (${((100 * target.flops) / parentFlops).toFixed(1)}% of the parent)` : `pruning rate ${target.rate}`),
      );
      const groups = spec.groups.map((g) => g.name);
      const started = performance.now();
      const out = await distill(backend.selected.engine, parent, data, settings, opts.seed, (e) => {
        for (const line of epochLines(e, opts.epochs, groups, parentFlops)) say(line);
      });
      if (out.status === 'failed') throw new UserError(`distillation failed: ${out.error}`);
      const m = materialise(spec, parent.widths, out.weights!, out.kept!);
      // Saved under a temporary name and renamed, so a failure never leaves a half-written model at --out.
      const tmp = join(dirname(opts.out), `.${basename(opts.out)}.partial-${process.pid}`);
      rmSync(tmp, { recursive: true, force: true });
      mkdirSync(dirname(opts.out), { recursive: true });
      const metrics: Record<string, number | string | undefined> = {
        valDistill: out.valDistill,
        student: out.best! + 1,
        epochs: out.curves.length,
        steps: out.steps,
        backend: backend.name,
        memoryFormat: out.memoryFormat,
        projectedNorm: out.projected,
        projectedLive: out.projection!.live,
        projectedChosen: out.projection!.chosen,
        keptMedianNorm: out.projection!.keptMedianNorm,
        targetFlops: 'flops' in target ? target.flops : undefined,
        rate: 'rate' in target ? target.rate : undefined,
        seconds: (performance.now() - started) / 1000,
      };
      let meta;
      try {
        meta = await saveMaterialised(spec, m, tmp, { method: 'distill', parent: { dir: opts.parent, widths: parent.widths }, kept: out.kept!, metrics, seed: opts.seed, settings });
        checkOut(opts.out);
        if (existsSync(opts.out)) rmSync(opts.out, { recursive: true });
        renameSync(tmp, opts.out);
      } finally {
        rmSync(tmp, { recursive: true, force: true });
      }
      const c = meta.complexity;
      say(`best student ${out.best! + 1}: widths ${m.widths.join(',')}`);
      say(
        `pruned: ${formatCount(c.flops)} FLOPs (${((100 * c.flops) / parentFlops).toFixed(1)}% of the parent` +
          ('flops' in target ? `, ${((100 * (c.flops - target.flops)) / target.flops).toFixed(2)}% from the target` : '') +
          `), ${formatCount(c.params)} params; largest chosen channel norm set to zero at the end ${out.projected!.toPrecision(3)}`,
      );
      // Not an error: the model is valid. But a projection that cut channels of the kept ones' size is not the
      // method's gentle end, and the accuracy may show it.
      const p = out.projection!;
      if (p.live > 0 && out.projected! >= 0.1 * p.keptMedianNorm) {
        say(
          `warning: the sparsity penalty left ${p.live} of ${p.chosen} chosen channels non-zero, and the final projection cut them ` +
            `(largest norm ${out.projected!.toPrecision(3)}, median norm of the kept channels ${p.keptMedianNorm.toPrecision(3)}); ` +
            'channels the network still used may have gone: raise --lambda-sparsity or --epochs',
        );
      }
      say(`saved to ${opts.out}`);
      let testError: number | undefined;
      if (opts.evaluate) {
        const net = await backend.selected.engine.build(spec, m.widths, opts.seed, settings.optimizer);
        try {
          await net.writeWeights(m.weights);
          const test = await evaluate(net, data, data.test, 2 * opts.batch);
          testError = test.error;
          say(`test error ${(100 * test.error).toFixed(2)}% (evaluation only; training read no label)`);
        } finally {
          net.dispose();
        }
      }
      if (opts.json) {
        const result = { method: 'distill', out: opts.out, widths: m.widths, complexity: c, parentComplexity, metrics, ...(testError !== undefined ? { testError } : {}), curves: out.curves };
        console.log(JSON.stringify(result, null, 2));
      }
    });
}
