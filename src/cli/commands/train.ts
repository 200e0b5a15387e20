/** `prunespace train`: trains one subnetwork and prints per-epoch curves, validation and test error. */
import type { Command } from 'commander';
import { complexity } from '../../complexity/count.js';
import { buildNet, familyNames, parseShape } from '../../nets/registry.js';
import { baseWidths, checkWidths, keepWidths } from '../../nets/resolve.js';
import { DATA_SHAPES } from '../../training/data/load.js';
import { startBackend } from '../../training/trial.js';
import { runTrial } from '../../training/trial.js';
import type { EpochCurve } from '../../training/types.js';
import { UserError } from '../../util/errors.js';
import { intFlag, intListFlag, numberFlag } from '../parse.js';
import { addTrainingFlags, trainSettings, type TrainingFlags } from '../training-flags.js';

interface Options extends TrainingFlags {
  net: string;
  input?: string;
  classes?: number;
  widths?: number[];
  keep?: number;
  seed: number;
  save?: string;
  json?: boolean;
}

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
    .option('--keep <ratio>', 'every group keeps round-half-up(ratio x width) channels (default: 1, the original)', numberFlag('--keep', { above: 0, max: 1 }))
    .option('--seed <s>', 'seed of initialisation, data order and augmentation', intFlag('--seed', { min: 0 }), 0),
    { required: false, fallback: DEFAULT_EPOCHS },
  )
    .option('--save <dir>', 'save the trained model (model.json, weights.bin, prunespace.json)')
    .option('--json', 'print the trial result as JSON on stdout (progress goes to stderr)')
    .action(async (opts: Options) => {
      if (opts.keep !== undefined && opts.widths) throw new UserError('give either --keep or --widths, not both');
      const known = opts.data === 'synthetic' ? undefined : DATA_SHAPES[opts.data];
      const spec = buildNet({
        family: opts.net,
        input: opts.input ? parseShape(opts.input) : known?.shape,
        classes: opts.classes ?? known?.classes,
      });
      const widths = opts.widths ?? (opts.keep !== undefined ? keepWidths(spec, opts.keep) : baseWidths(spec));
      checkWidths(spec, widths);
      const settings = trainSettings(opts, DEFAULT_EPOCHS);
      // Progress goes to stderr with --json so stdout stays one JSON document.
      const say = (line: string): void => void (opts.json ? process.stderr : process.stdout).write(line + '\n');
      const backend = await startBackend(settings.backend, settings.threads);
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
