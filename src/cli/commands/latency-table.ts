/** `prunespace latency-table`: builds (or reads) a space's per-layer latency table on its target and prints its held-out error. */
import type { Command } from 'commander';
import { loadSpace } from '../../space/load.js';
import { UserError } from '../../util/errors.js';
import { describeFit, latencyModelFor } from '../latency.js';
import { intFlag } from '../parse.js';

interface Options {
  out?: string;
  holdout: number;
  fit: number;
  grid: number;
  json?: boolean;
}

export function registerLatencyTable(program: Command): void {
  program
    .command('latency-table')
    .description("Time every distinct layer shape of a space's network on its regime.latency target (once per machine and onnxruntime version, cached), " +
      'fit the scale to end-to-end measurements, and print the predictor\'s error on held-out configurations')
    .argument('<space>', 'space file (JSON) with regime.latency')
    .option('--out <file>', 'table file (default ~/.cache/prunespace/latency-tables.json, or under $XDG_CACHE_HOME); search and sample read it with --latency-table')
    .option('--holdout <n>', 'held-out configurations measured end to end to state the error', intFlag('--holdout', { min: 1 }), 8)
    .option('--fit <n>', 'configurations measured end to end to fit the scale', intFlag('--fit', { min: 3 }), 8)
    .option('--grid <n>', 'width grid points per layer axis (widths between are interpolated)', intFlag('--grid', { min: 2 }), 6)
    .option('--json', 'print the fit as JSON')
    .action(async (path: string, opts: Options) => {
      const loaded = loadSpace(path);
      if (!loaded.file.regime.latency) throw new UserError(`${path}: regime.latency is not given, so there is no target to build a latency table for`);
      const log = (line: string) => process.stderr.write(`prunespace: ${line}\n`);
      const model = (await latencyModelFor(loaded, { file: opts.out, holdout: opts.holdout, fitConfigs: opts.fit, grid: opts.grid, log }))!;
      if (opts.json) {
        console.log(JSON.stringify({ file: model.file, key: model.key, timed: model.timed, fit: model.fit }, null, 2));
        return;
      }
      console.log(`${loaded.file.name}: ${model.file} (${model.key.target} on ${model.key.cpu}, ${model.key.cores} cores, onnxruntime ${model.key.onnxruntime})`);
      console.log(`timed now: ${model.timed.layers} layer shape(s), ${model.timed.endToEnd} end-to-end configuration(s)`);
      console.log(describeFit(model.fit));
    });
}
