/** `prunespace train`: trains one subnetwork and prints per-epoch curves, validation and test error. */
import type { NetSpec } from '../../nets/types.js';
import { Option, type Command } from 'commander';
import { complexity } from '../../complexity/count.js';
import { buildNet, familyNames, parseShape } from '../../nets/registry.js';
import { baseWidths, checkWidths, keepWidths } from '../../nets/resolve.js';
import { DATA_SHAPES } from '../../training/data/load.js';
import { startBackend } from '../../training/trial.js';
import { runTrial } from '../../training/trial.js';
import { planEarlyPruning, trainWithPruning, type PruneAt } from '../../pruning/during-training.js';
import { ALLOCATIONS, DEFAULT_MIN_KEEP, type Allocation } from '../../pruning/allocate.js';
import { checkCriterion, COMBINES, criterionNames, type Combine } from '../../pruning/importance.js';
import { checkOutDir, describeStep } from '../../pruning/prune.js';
import { pruneTarget } from './prune.js';
import { formatCount } from '../../util/format.js';
import type { EpochCurve } from '../../training/types.js';
import { UserError } from '../../util/errors.js';
import { intFlag, intListFlag, numberFlag } from '../parse.js';
import { addTrainingFlags, epochBound, trainSettings, type TrainingFlags } from '../training-flags.js';
import { trainProgress } from '../train-progress.js';

interface Options extends TrainingFlags {
  net: string;
  input?: string;
  classes?: number;
  shortcut?: 'zeropad' | 'projection';
  widths?: number[];
  keep?: number;
  seed: number;
  save?: string;
  json?: boolean;
  pruneAt?: PruneAt;
  criterion?: string;
  flops?: number;
  params?: number;
  allocation?: Allocation;
  minKeep?: number;
  temperature?: number;
  measureFlow?: boolean;
  pruneSteps?: number;
  pruneEvery?: number;
  finetuneEpochs?: number;
  finetuneLr?: number;
  scoreBatches?: number;
  combine?: Combine;
}

function pruneAtFlag(value: string): PruneAt {
  if (value.trim() === 'end') return 'end';
  return intFlag('--prune-at', { min: 0 })(value);
}

/** The pruning flags only mean something with --prune-at; given without it they are an error, not ignored. */
const PRUNE_ONLY: [keyof Options, string][] = [
  ['criterion', '--criterion'], ['flops', '--flops'], ['pruneSteps', '--prune-steps'], ['pruneEvery', '--prune-every'],
  ['finetuneEpochs', '--finetune-epochs'], ['finetuneLr', '--finetune-lr'], ['scoreBatches', '--score-batches'], ['combine', '--combine'],
  ['params', '--params'], ['allocation', '--allocation'], ['minKeep', '--min-keep'], ['temperature', '--temperature'], ['measureFlow', '--measure-flow'],
];

const DEFAULT_EPOCHS = 10;

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

function epochLine(c: EpochCurve, epochs: number | undefined): string {
  return (
    `epoch ${String(c.epoch).padStart(3)}${epochs ? `/${epochs}` : ''}  ` +
    `train loss ${c.trainLoss.toFixed(4)} err ${pct(c.trainError)}  ` +
    `val loss ${c.valLoss.toFixed(4)} err ${pct(c.valError)}  lr ${c.lr.toPrecision(3)}  ${c.seconds.toFixed(1)}s`
  );
}

export function registerTrain(program: Command): void {
  addTrainingFlags(
    program
    .command('train')
    .description('Train one subnetwork and print its validation and test error')
    .requiredOption('--net <name>', `network family (${familyNames().join(', ')})`)
    .option('--input <HxWxC>', "input shape (default: the dataset's; for synthetic data the family's)")
    .option('--classes <k>', "number of classes (default: the dataset's)", intFlag('--classes', { min: 2 }))
    .option('--widths <w1,w2,...>', 'one kept-channel count per group, in group order', intListFlag('--widths'))
    .addOption(new Option('--shortcut <kind>', 'ResNet shortcut where widths change (default zeropad)').choices(['zeropad', 'projection']))
    .option('--keep <ratio>', 'every group keeps round-half-up(ratio x width) channels (default: 1, the original)', numberFlag('--keep', { above: 0, max: 1 }))
    .option('--seed <s>', 'seed of initialisation, data order and augmentation', intFlag('--seed', { min: 0 }), 0),
    { required: false, fallback: DEFAULT_EPOCHS },
  )
    .option('--save <dir>', 'save the trained model (model.json, weights.bin, prunespace.json)')
    .option('--json', 'print the trial result as JSON on stdout (progress goes to stderr)')
    .option('--prune-at <E|end>', 'prune during training: train at full width, prune at epoch E (0: at initialisation; end: after the last epoch) to the --keep, --widths or --flops target, and train on', pruneAtFlag)
    .option('--criterion <name>', `with --prune-at: importance measure (${criterionNames().join(', ')})`)
    .option('--flops <F>', "with --prune-at: FLOPs target, a fraction of the full width's (<= 1) or an absolute count; the widest uniform keep ratio under it", numberFlag('--flops', { above: 0 }))
    .option('--params <P>', "with --prune-at: params target, a fraction of the full width's (<= 1) or an absolute count", numberFlag('--params', { above: 0 }))
    .addOption(new Option('--allocation <how>', 'with --prune-at: uniform (default; one keep ratio everywhere) or global (channels of all groups ranked together by score / group mean |score|)').choices([...ALLOCATIONS]))
    .option('--min-keep <share>', `with --allocation global: every group keeps at least this share of its channels (default ${DEFAULT_MIN_KEEP})`, numberFlag('--min-keep', { above: 0, max: 1 }))
    .option('--temperature <T>', 'with --prune-at: logit temperature of the scoring loss (default 200 for grasp, 1 otherwise)', numberFlag('--temperature', { above: 0 }))
    .option('--measure-flow', 'with --prune-at: record the loss and gradient norm on the scoring batches just before and after each step (prunespace.json, --json)')
    .option('--prune-steps <S>', 'with --prune-at: prune in S steps towards the target, most of it first (cubic schedule; default 1: one-shot)', intFlag('--prune-steps', { min: 1 }))
    .option('--prune-every <P>', 'with --prune-steps: epochs between steps (default 1)', intFlag('--prune-every', { min: 1 }))
    .option('--finetune-epochs <n>', 'with --prune-at end: fine-tuning epochs after pruning (own cosine schedule; default 0)', intFlag('--finetune-epochs', { min: 0 }))
    .option('--finetune-lr <x>', 'with --finetune-epochs: peak fine-tuning learning rate (default 0.01)', numberFlag('--finetune-lr', { above: 0 }))
    .option('--score-batches <n>', 'with --prune-at: batches whose gradients are averaged for gradient-based criteria (default 4)', intFlag('--score-batches', { min: 1 }))
    .addOption(new Option('--combine <how>', "with --prune-at: how a group's coupled convs' scores combine (default sum)").choices([...COMBINES]))
    .addHelpText('after', '\nWith --prune-at, --keep, --widths, --flops or --params name the widths or budget the run ends with; it starts at full width.')
    .action(async (opts: Options) => {
      if (opts.pruneAt !== undefined) return trainPruned(opts);
      for (const [key, flag] of PRUNE_ONLY) if (opts[key] !== undefined) throw new UserError(`${flag} needs --prune-at`);
      if (opts.keep !== undefined && opts.widths) throw new UserError('give either --keep or --widths, not both');
      const spec = netFromOptions(opts);
      const widths = opts.widths ?? (opts.keep !== undefined ? keepWidths(spec, opts.keep) : baseWidths(spec));
      checkWidths(spec, widths);
      const settings = trainSettings(opts, DEFAULT_EPOCHS);
      // Progress goes to stderr with --json so stdout stays one JSON document.
      const out = opts.json ? process.stderr : process.stdout;
      const progress = trainProgress({ write: (text) => void out.write(text), tty: out.isTTY === true }, epochBound(settings));
      const say = (line: string): void => {
        progress.clear();
        out.write(line + '\n');
      };
      const backend = await startBackend(settings.backend, settings.threads);
      say(`backend: ${backend.reason}`);
      const c = complexity(spec, widths);
      say(`net: ${spec.ref.family} ${spec.ref.input.join('x')} ${spec.ref.classes} classes, widths ${widths.join(',')}; ${c.flops.toLocaleString('en-US')} FLOPs, ${c.params.toLocaleString('en-US')} params`);
      const result = await runTrial(
        { net: spec.ref, widths, settings, seed: opts.seed, ...(opts.save ? { saveDir: opts.save } : {}) },
        (curve) => say(epochLine(curve, epochBound(settings))),
        progress.onStep,
      );
      if (opts.json) {
        console.log(JSON.stringify({ net: spec.ref, widths, complexity: c, seed: opts.seed, settings, ...result }, null, 2));
      } else if (result.status === 'complete') {
        say(`validation error ${pct(result.valError)}`);
        say(`test error ${pct(result.testError)}`);
        say(`${result.imagesPerSecond?.toFixed(1)} images/s training, ${result.wallSeconds.toFixed(1)}s in all`);
        if (opts.save) say(`saved to ${opts.save}`);
      }
      if (result.status === 'failed') {
        process.stderr.write(`prunespace: training failed: ${result.error}\n`);
        process.exitCode = 1;
      }
    });
}

/** The network the options name; input shape and classes default to the dataset's. */
function netFromOptions(opts: Options): NetSpec {
  const known = opts.data === 'synthetic' ? undefined : DATA_SHAPES[opts.data];
  return buildNet({
    family: opts.net,
    input: opts.input ? parseShape(opts.input) : known?.shape,
    classes: opts.classes ?? known?.classes,
    shortcut: opts.shortcut,
  });
}

/** `train --prune-at`: the pruning-during-training path (src/pruning/during-training.ts). */
async function trainPruned(opts: Options): Promise<void> {
  const target = pruneTarget(opts, '--prune-at needs exactly one target: --keep, --widths, --flops or --params');
  if (opts.minKeep !== undefined && opts.allocation !== 'global') throw new UserError('--min-keep applies to --allocation global only');
  if (opts.criterion === undefined) throw new UserError('--prune-at needs --criterion');
  checkCriterion(opts.criterion);
  if (opts.pruneEvery !== undefined && opts.pruneSteps === undefined) throw new UserError('--prune-every needs --prune-steps');
  if (opts.finetuneLr !== undefined && opts.finetuneEpochs === undefined) throw new UserError('--finetune-lr needs --finetune-epochs');
  const spec = netFromOptions(opts);
  const settings = trainSettings(opts, DEFAULT_EPOCHS);
  const request = {
    spec,
    target,
    ...(opts.allocation !== undefined ? { allocation: opts.allocation } : {}),
    ...(opts.minKeep !== undefined ? { minKeep: opts.minKeep } : {}),
    ...(opts.temperature !== undefined ? { temperature: opts.temperature } : {}),
    ...(opts.measureFlow ? { measureFlow: true } : {}),
    criterion: opts.criterion,
    at: opts.pruneAt!,
    steps: opts.pruneSteps ?? 1,
    every: opts.pruneEvery ?? 1,
    finetuneEpochs: opts.finetuneEpochs ?? 0,
  };
  // Everything checkable is checked before any computing; a step budget (--steps) is checked again once data is known.
  const bound = epochBound(settings);
  const plan = planEarlyPruning(request, bound ?? Number.MAX_SAFE_INTEGER);
  if (opts.save) checkOutDir(opts.save, '--save');
  const out = opts.json ? process.stderr : process.stdout;
  const progress = trainProgress({ write: (text) => void out.write(text), tty: out.isTTY === true }, bound);
  const say = (line: string): void => {
    progress.clear();
    out.write(line + '\n');
  };
  const backend = await startBackend(settings.backend, settings.threads);
  say(`backend: ${backend.reason}`);
  const full = complexity(spec, plan.fullWidths);
  say(`net: ${spec.ref.family} ${spec.ref.input.join('x')} ${spec.ref.classes} classes, widths ${plan.fullWidths.join(',')}; ${full.flops.toLocaleString('en-US')} FLOPs, ${full.params.toLocaleString('en-US')} params`);
  say(`prune by ${opts.criterion} at epoch(s) ${plan.epochs.join(',')} to ${describeStep(plan.steps[plan.steps.length - 1])}`);
  const result = await trainWithPruning(
    {
      ...request,
      combine: opts.combine ?? 'sum',
      scoreBatches: opts.scoreBatches ?? 4,
      finetuneLr: opts.finetuneLr ?? 0.01,
      settings,
      seed: opts.seed,
      engine: backend.selected.engine,
      ...(opts.save ? { saveDir: opts.save } : {}),
    },
    { epoch: (c) => say(epochLine(c, bound)), step: progress.onStep, log: say },
  );
  if (opts.json) {
    console.log(JSON.stringify({ net: spec.ref, seed: opts.seed, settings, ...result }, null, 2));
  } else if (result.status === 'complete') {
    const share = (a: number, b: number): string => `${((100 * a) / b).toFixed(1)}%`;
    say(`FLOPs ${formatCount(result.complexity.flops)} (${share(result.complexity.flops, result.parentComplexity.flops)} of full width), params ${formatCount(result.complexity.params)} (${share(result.complexity.params, result.parentComplexity.params)})`);
    if (result.testErrorBeforeFinetune !== undefined) say(`test error after pruning, before fine-tuning ${pct(result.testErrorBeforeFinetune)}`);
    say(`validation error ${pct(result.valError)}`);
    say(`test error ${pct(result.testError)}`);
    if (opts.save) say(`saved to ${opts.save}`);
  }
  if (result.status === 'failed') {
    process.stderr.write(`prunespace: training failed: ${result.error}\n`);
    process.exitCode = 1;
  }
}
