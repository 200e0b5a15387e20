/** `prunespace sample`: seeded configurations of a space inside its regime, as a table, JSON or CSV. */
import { Option, type Command } from 'commander';
import { stringify } from 'csv-stringify/sync';
import { compileSpace } from '../../space/compile.js';
import { loadSpace } from '../../space/load.js';
import { sampleSpace } from '../../space/sampler.js';
import { UserError } from '../../util/errors.js';
import { formatCount } from '../../util/format.js';
import { latencyModelFor } from '../latency.js';
import { intFlag } from '../parse.js';

interface Options {
  n: number;
  seed: number;
  json?: boolean;
  csv?: boolean;
  maxDraws?: number;
  maxAttempts?: number;
  latencyTable?: string;
}

export function registerSample(program: Command): void {
  program
    .command('sample')
    .description("Sample width configurations of a space inside its regime (seeded, de-duplicated)")
    .argument('<space>', 'space file (JSON)')
    .requiredOption('-n, --n <count>', 'number of configurations', intFlag('-n', { min: 1 }))
    .option('--seed <s>', 'random seed', intFlag('--seed'), 0)
    .option('--max-draws <k>', 'bound on sampler draws (default max(200000, 2000 x n))', intFlag('--max-draws', { min: 1 }))
    // The old spelling; in `search` --max-attempts means retries per trial, so here it only explains the rename.
    .addOption(new Option('--max-attempts <k>').hideHelp())
    .option('--json', 'print JSON')
    .option('--csv', 'print CSV, one column per group')
    .option('--latency-table <file>', 'regime.latency: the latency table file (default ~/.cache/prunespace/latency-tables.json; built where missing, see latency-table)')
    .action(async (path: string, opts: Options) => {
      if (opts.json && opts.csv) throw new UserError('give either --json or --csv, not both');
      if (opts.maxAttempts !== undefined) {
        throw new UserError('sample: --max-attempts is now --max-draws (the bound on sampler draws); --max-attempts is search\'s attempts per trial');
      }
      const loaded = loadSpace(path);
      const latency = await latencyModelFor(loaded, { file: opts.latencyTable, log: (line) => process.stderr.write(`prunespace: ${line}\n`) });
      const space = compileSpace(loaded, { predictLatency: latency?.predict });
      const result = sampleSpace(space, opts.n, opts.seed, { maxAttempts: opts.maxDraws });
      const groups = space.net.groups;
      const rate = `${(100 * result.acceptanceRate).toFixed(2)}%`;
      const summary = `${result.configs.length} configurations in ${result.attempts} draws (acceptance ${rate})`;
      if (result.shortfall) process.stderr.write(`prunespace: warning: ${result.shortfall}\n`);
      const rows = result.configs.map((c, i) => ({
        index: i,
        ...c.complexity,
        flopsFraction: c.complexity.flops / space.original.flops,
        ...(c.predictedLatencyMs !== undefined ? { predictedLatencyMs: c.predictedLatencyMs } : {}),
        widths: c.widths,
      }));
      if (opts.json) {
        const out = {
          space: space.loaded.file.name, seed: opts.seed, attempts: result.attempts, acceptanceRate: result.acceptanceRate,
          ...(latency ? { latencyTable: { file: latency.file, heldOutMedianRelError: latency.fit.holdout.medianRelError } } : {}),
        };
        console.log(JSON.stringify({ ...out, groups: groups.map((g) => g.name), configs: rows }, null, 2));
        return;
      }
      if (opts.csv) {
        const ms = latency ? ['predicted_latency_ms'] : [];
        const header = ['index', 'flops', 'params', 'activations', 'flops_fraction', ...ms, ...groups.map((g) => g.name)];
        const body = rows.map((r) => [r.index, r.flops, r.params, r.activations, r.flopsFraction.toFixed(6), ...(latency ? [r.predictedLatencyMs!.toFixed(4)] : []), ...r.widths]);
        process.stdout.write(stringify([header, ...body]));
        process.stderr.write(`${summary}\n`);
        return;
      }
      console.log(`${space.loaded.file.name}: ${summary}`);
      for (const r of rows) {
        console.log(
          `${String(r.index).padStart(4)}  FLOPs ${formatCount(r.flops).padStart(8)} (${(100 * r.flopsFraction).toFixed(1)}%)  ` +
            `params ${formatCount(r.params).padStart(7)}  ${r.predictedLatencyMs !== undefined ? `predicted ${r.predictedLatencyMs.toFixed(3)} ms  ` : ''}widths ${r.widths.join(',')}`,
        );
      }
    });
}
