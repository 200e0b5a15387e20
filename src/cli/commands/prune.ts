/** `prunespace prune`: scores a saved model's channels, keeps the best per group, inherits weights, fine-tunes, saves. */
import { Option, type Command } from 'commander';
import { formatCount } from '../../util/format.js';
import { ALLOCATIONS, DEFAULT_MIN_KEEP, type Allocation } from '../../pruning/allocate.js';
import { COMBINES, CRITERIA, criterionNames, type Combine } from '../../pruning/importance.js';
import { checkRequest, describeStep, prune, type PruneTarget } from '../../pruning/prune.js';
import { DEFAULT_PRECISE_BN } from '../../training/bn-stats.js';
import { DATASETS } from '../../training/data/load.js';
import { selectEngine } from '../../training/engines/select.js';
import type { DatasetName, TrainSettings } from '../../training/types.js';
import { UserError } from '../../util/errors.js';
import { intFlag, intListFlag, numberFlag } from '../parse.js';
import { ENGINE_CHOICES } from '../../training/engine-names.js';

interface Options {
  parent: string;
  criterion: string;
  keep?: number;
  widths?: number[];
  flops?: number;
  params?: number;
  allocation: Allocation;
  minKeep?: number;
  epochs: number;
  out: string;
  combine: Combine;
  scoreBatches: number;
  temperature?: number;
  bnTrain: boolean;
  seed: number;
  data?: DatasetName;
  dataDir?: string;
  subset?: number;
  syntheticSamples?: number;
  batch: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  preciseBn: number;
  augment: boolean;
  backend: TrainSettings['backend'];
  threads?: number;
  json?: boolean;
}

function criteriaHelp(): string {
  return criterionNames()
    .map((n) => `  ${n.padEnd(10)} ${CRITERIA[n].description}`)
    .join('\n');
}

/** The one target among --keep, --widths, --flops and --params; none or several is a UserError with `message`. */
export function pruneTarget(o: { keep?: number; widths?: number[]; flops?: number; params?: number }, message: string): PruneTarget {
  const given: PruneTarget[] = [];
  if (o.keep !== undefined) given.push({ keep: o.keep });
  if (o.widths !== undefined) given.push({ widths: o.widths });
  if (o.flops !== undefined) given.push({ flops: o.flops });
  if (o.params !== undefined) given.push({ params: o.params });
  if (given.length !== 1) throw new UserError(message);
  return given[0];
}

export function registerPrune(program: Command): void {
  program
    .command('prune')
    .description('Prune a saved prunespace model: score channels, keep the best per group, inherit weights, optionally fine-tune, save')
    .requiredOption('--parent <dir>', 'a model saved by prunespace (train --save, search --save-models, prune)')
    .requiredOption('--criterion <name>', `importance measure (${criterionNames().join(', ')})`)
    .option('--keep <ratio>', "every group keeps round-half-up(ratio x the parent's width) channels", numberFlag('--keep', { above: 0, max: 1 }))
    .option('--widths <w1,w2,...>', 'kept channels per group, in group order', intListFlag('--widths'))
    .option('--flops <F>', "FLOPs target: a fraction of the parent's (<= 1) or an absolute count; uniform: the widest uniform keep ratio under it", numberFlag('--flops', { above: 0 }))
    .option('--params <P>', "params target: a fraction of the parent's (<= 1) or an absolute count, as --flops", numberFlag('--params', { above: 0 }))
    .addOption(new Option('--allocation <how>', 'uniform: every group keeps the same ratio; global: channels of all groups ranked together by score / group mean |score|, widths decided by the ranking').choices([...ALLOCATIONS]).default('uniform'))
    .option('--min-keep <share>', `global allocation: every group keeps at least this share of its channels (default ${DEFAULT_MIN_KEEP})`, numberFlag('--min-keep', { above: 0, max: 1 }))
    .requiredOption('--out <dir>', 'where to save the pruned model (must be new or empty)')
    .option('--epochs <n>', 'fine-tuning epochs after pruning (0: none)', intFlag('--epochs', { min: 0 }), 0)
    .addOption(new Option('--combine <how>', 'how the scores of a group\'s coupled convs combine (each normalised by its mean |score|)').choices([...COMBINES]).default('sum'))
    .option('--score-batches <n>', 'batches whose gradients are averaged for gradient-based criteria', intFlag('--score-batches', { min: 1 }), 4)
    .option('--temperature <T>', 'logit temperature of the scoring loss (default: 200 for grasp, 1 for every other criterion, as the paper\'s code)', numberFlag('--temperature', { above: 0 }))
    .option('--bn-train', 'score with BN in training mode (batch statistics); default inference mode, as the paper\'s code', false)
    .option('--seed <s>', 'seed of scoring batches, the random criterion and fine-tuning', intFlag('--seed', { min: 0 }), 0)
    .addOption(new Option('--data <name>', "data for scoring, fine-tuning and evaluation (default: the parent's)").choices([...DATASETS]))
    .option('--data-dir <dir>', 'dataset directory')
    .option('--subset <fraction>', 'fraction of the training split to fine-tune on', numberFlag('--subset', { above: 0, max: 1 }))
    .option('--synthetic-samples <n>', 'synthetic data only: training images', intFlag('--synthetic-samples', { min: 2 }))
    .option('--batch <n>', 'batch size of scoring and fine-tuning', intFlag('--batch', { min: 1 }), 128)
    .option('--lr <x>', 'peak fine-tuning learning rate (cosine decay to 0)', numberFlag('--lr', { above: 0 }), 0.01)
    .option('--momentum <m>', 'SGD momentum', numberFlag('--momentum', { min: 0, max: 0.999 }), 0.9)
    .option('--nesterov', 'Nesterov momentum while fine-tuning', false)
    .option('--weight-decay <w>', 'L2 weight decay on conv and linear kernels', numberFlag('--weight-decay', { min: 0 }), 5e-4)
    .option(
      '--precise-bn <batches>',
      'fine-tuning: before every evaluation, re-estimate the BN statistics from this many batches of training images at the current weights (as train; 0: use the running averages)',
      intFlag('--precise-bn', { min: 0 }),
      DEFAULT_PRECISE_BN,
    )
    .option('--no-augment', 'turn off augmentation while fine-tuning')
    .addOption(new Option('--backend <name>', 'engine: auto, torch, tensorflow, wasm or cpu').choices(ENGINE_CHOICES).default('auto'))
    .option('--threads <n>', 'torch: intra-op threads', intFlag('--threads', { min: 1 }))
    .option('--json', 'print the result as JSON on stdout (progress on stderr)')
    .addHelpText('after', `\nCriteria (a group keeps its highest scores):\n${criteriaHelp()}`)
    .action(async (opts: Options) => {
      const target = pruneTarget(opts, 'give exactly one of --keep, --widths, --flops or --params');
      if (opts.minKeep !== undefined && opts.allocation !== 'global') throw new UserError('--min-keep applies to --allocation global only');
      const allocation = { allocation: opts.allocation, ...(opts.minKeep !== undefined ? { minKeep: opts.minKeep } : {}) };
      // Everything checkable is checked before any computing, so bad input writes nothing.
      const { parent, plan } = checkRequest({
        parentDir: opts.parent, criterion: opts.criterion, target, outDir: opts.out, ...allocation,
        ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
      });
      const saved = (parent.metadata.settings ?? {}) as Partial<TrainSettings>;
      let data: TrainSettings['data'] | undefined = opts.data ? { name: opts.data } : saved.data ? { ...saved.data } : undefined;
      const needsData = CRITERIA[opts.criterion].needs !== 'weights' || opts.epochs > 0;
      if (needsData && !data) throw new UserError(`--data: criterion ${opts.criterion}${opts.epochs > 0 ? ' with fine-tuning' : ''} needs data, and the parent records none`);
      data ??= { name: 'synthetic' };
      if (opts.dataDir !== undefined) data.dir = opts.dataDir;
      if (opts.subset !== undefined) data.subset = opts.subset;
      if (opts.syntheticSamples !== undefined) data.samples = opts.syntheticSamples;
      data.augment = opts.augment;
      const settings: TrainSettings = {
        data,
        epochs: opts.epochs,
        batchSize: opts.batch,
        lr: opts.lr,
        momentum: opts.momentum,
        nesterov: opts.nesterov,
        weightDecay: opts.weightDecay,
        warmupEpochs: 0,
        labelSmoothing: 0,
        backend: opts.backend,
        ...(opts.threads !== undefined ? { threads: opts.threads } : {}),
        ...(opts.preciseBn > 0 && opts.epochs > 0 ? { preciseBn: opts.preciseBn } : {}),
      };
      const say = (line: string): void => void (opts.json ? process.stderr : process.stdout).write(line + '\n');
      const { engine, reason } = await selectEngine(opts.backend, opts.threads !== undefined ? { threads: opts.threads } : {});
      say(`engine: ${reason}`);
      say(`parent: ${parent.spec.ref.family} widths ${parent.metadata.widths.join(',')}; child ${describeStep(plan)}`);
      const r = await prune(
        {
          parentDir: opts.parent,
          criterion: opts.criterion,
          target,
          ...allocation,
          outDir: opts.out,
          combine: opts.combine,
          scoreBatches: opts.scoreBatches,
          ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
          bnTraining: opts.bnTrain,
          seed: opts.seed,
          settings,
          engine,
          engineName: engine.name,
        },
        say,
      );
      const share = (a: number, b: number) => `${((100 * a) / b).toFixed(1)}%`;
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else {
        say(`FLOPs ${formatCount(r.complexity.flops)} (${share(r.complexity.flops, r.parentComplexity.flops)} of the parent), params ${formatCount(r.complexity.params)} (${share(r.complexity.params, r.parentComplexity.params)})`);
        say(`saved to ${opts.out}`);
      }
    });
}
