/** `prunespace train`: trains one subnetwork and prints per-epoch curves, validation and test error. */
import { Command, Option } from 'commander';
import { complexity } from '../../complexity/count.js';
import { buildNet, familyNames, parseShape } from '../../nets/registry.js';
import { baseWidths, checkWidths, keepWidths } from '../../nets/resolve.js';
import { DATA_SHAPES, DATASETS } from '../../training/data/load.js';
import { startBackend } from '../../training/trial.js';
import { runTrial } from '../../training/trial.js';
import type { DatasetName, EpochCurve, TrainSettings } from '../../training/types.js';
import { UserError } from '../../util/errors.js';
import { intFlag, intListFlag, numberFlag } from '../parse.js';

interface Options {
  net: string;
  input?: string;
  classes?: number;
  widths?: number[];
  keep?: number;
  data: string;
  dataDir?: string;
  subset: number;
  valFraction: number;
  samples?: number;
  augment: boolean;
  epochs?: number;
  steps?: number;
  batch: number;
  lr: number;
  momentum: number;
  nesterov: boolean;
  weightDecay: number;
  warmup: number;
  labelSmoothing: number;
  seed: number;
  backend: TrainSettings['backend'];
  save?: string;
  json?: boolean;
}

const DEFAULT_EPOCHS = 10;
/** With only --steps, epochs stop bounding the run. */
const UNBOUNDED_EPOCHS = 1_000_000;

const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(100 * x).toFixed(2)}%`);

function epochLine(c: EpochCurve, epochs: number | undefined): string {
  return (
    `epoch ${String(c.epoch).padStart(3)}${epochs ? `/${epochs}` : ''}  ` +
    `train loss ${c.trainLoss.toFixed(4)} err ${pct(c.trainError)}  ` +
    `val loss ${c.valLoss.toFixed(4)} err ${pct(c.valError)}  lr ${c.lr.toPrecision(3)}  ${c.seconds.toFixed(1)}s`
  );
}

export function registerTrain(program: Command): void {
  program
    .command('train')
    .description('Train one subnetwork and print its validation and test error')
    .requiredOption('--net <name>', `network family (${familyNames().join(', ')})`)
    .option('--input <HxWxC>', "input shape (default: the dataset's; for synthetic data the family's)")
    .option('--classes <k>', "number of classes (default: the dataset's)", intFlag('--classes', { min: 2 }))
    .option('--widths <w1,w2,...>', 'one kept-channel count per group, in group order', intListFlag('--widths'))
    .option('--keep <ratio>', 'every group keeps round-half-up(ratio x width) channels (default: 1, the original)', numberFlag('--keep', { above: 0, max: 1 }))
    .addOption(new Option('--data <name>', 'dataset').choices([...DATASETS]).makeOptionMandatory())
    .option('--data-dir <dir>', 'dataset directory (fashion-mnist: /usr/share/datasets/fashion-mnist; cifar: data/cifar-10-batches-bin)')
    .option('--subset <fraction>', 'fraction of the training split used', numberFlag('--subset', { above: 0, max: 1 }), 1)
    .option('--val-fraction <fraction>', 'fraction of the training set held out for validation', numberFlag('--val-fraction', { above: 0, max: 0.9 }), 0.1)
    .option('--samples <n>', 'synthetic data only: training images (default 1024)', intFlag('--samples', { min: 2 }))
    .option('--no-augment', 'turn off augmentation (default on: cifar 4 px pad-and-crop + flips, fashion-mnist 2 px + flips, synthetic 2 px, no flips)')
    .option('--epochs <n>', `training epochs (default ${DEFAULT_EPOCHS}, or unbounded with --steps)`, intFlag('--epochs', { min: 1 }))
    .option('--steps <n>', 'step budget; training ends at whichever of epochs or steps comes first', intFlag('--steps', { min: 1 }))
    .option('--batch <n>', 'batch size', intFlag('--batch', { min: 1 }), 128)
    .option('--lr <x>', 'peak learning rate (cosine decay to 0)', numberFlag('--lr', { above: 0 }), 0.1)
    .option('--momentum <m>', 'SGD momentum', numberFlag('--momentum', { min: 0, max: 0.999 }), 0.9)
    .option('--nesterov', 'Nesterov momentum', false)
    .option('--weight-decay <w>', 'L2 weight decay on conv and linear kernels', numberFlag('--weight-decay', { min: 0 }), 5e-4)
    .option('--warmup <epochs>', 'linear learning-rate warmup, in epochs', numberFlag('--warmup', { min: 0 }), 0)
    .option('--label-smoothing <s>', 'label smoothing', numberFlag('--label-smoothing', { min: 0, max: 0.99 }), 0)
    .option('--seed <s>', 'seed of initialisation, data order and augmentation', intFlag('--seed', { min: 0 }), 0)
    .addOption(new Option('--backend <name>', 'auto: tensorflow, else wasm, else cpu').choices(['auto', 'tensorflow', 'wasm', 'cpu']).default('auto'))
    .option('--save <dir>', 'save the trained model (model.json, weights.bin, prunespace.json)')
    .option('--json', 'print the trial result as JSON on stdout (progress goes to stderr)')
    .action(async (opts: Options) => {
      if (opts.keep !== undefined && opts.widths) throw new UserError('give either --keep or --widths, not both');
      const dataName = opts.data as DatasetName;
      const known = dataName === 'synthetic' ? undefined : DATA_SHAPES[dataName];
      const spec = buildNet({
        family: opts.net,
        input: opts.input ? parseShape(opts.input) : known?.shape,
        classes: opts.classes ?? known?.classes,
      });
      const widths = opts.widths ?? (opts.keep !== undefined ? keepWidths(spec, opts.keep) : baseWidths(spec));
      checkWidths(spec, widths);
      if (opts.samples !== undefined && dataName !== 'synthetic') throw new UserError('--samples applies to --data synthetic only');
      const settings: TrainSettings = {
        data: {
          name: dataName,
          dir: opts.dataDir,
          subset: opts.subset,
          valFraction: opts.valFraction,
          augment: opts.augment,
          ...(opts.samples !== undefined ? { samples: opts.samples } : {}),
        },
        epochs: opts.epochs ?? (opts.steps !== undefined ? UNBOUNDED_EPOCHS : DEFAULT_EPOCHS),
        ...(opts.steps !== undefined ? { steps: opts.steps } : {}),
        batchSize: opts.batch,
        lr: opts.lr,
        momentum: opts.momentum,
        nesterov: opts.nesterov,
        weightDecay: opts.weightDecay,
        warmupEpochs: opts.warmup,
        labelSmoothing: opts.labelSmoothing,
        backend: opts.backend,
      };
      // Progress goes to stderr with --json so stdout stays one JSON document.
      const say = (line: string): void => void (opts.json ? process.stderr : process.stdout).write(line + '\n');
      const backend = await startBackend(settings.backend);
      say(`backend: ${backend.reason}`);
      const c = complexity(spec, widths);
      say(`net: ${spec.ref.family} ${spec.ref.input.join('x')} ${spec.ref.classes} classes, widths ${widths.join(',')}; ${c.flops.toLocaleString('en-US')} FLOPs, ${c.params.toLocaleString('en-US')} params`);
      const result = await runTrial(
        { net: spec.ref, widths, settings, seed: opts.seed, ...(opts.save ? { saveDir: opts.save } : {}) },
        (curve) => say(epochLine(curve, opts.epochs ?? (opts.steps === undefined ? DEFAULT_EPOCHS : undefined))),
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
