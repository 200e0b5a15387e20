/** `prunespace report`: a self-contained HTML report of a campaign (and campaigns compared with it), with CSVs. */
import type { Command } from 'commander';
import { basename, resolve } from 'node:path';
import { loadCampaign } from '../../analysis/campaign.js';
import { reportCampaign } from '../../analysis/report/build.js';
import { writeReport } from '../../analysis/report/write.js';
import { UserError } from '../../util/errors.js';
import { intFlag } from '../parse.js';

interface Options {
  compare: string[];
  out?: string;
  topK?: number;
  buckets?: number;
  round?: number;
}

export function registerReport(program: Command): void {
  program
    .command('report')
    .description('Write report.html (EDFs, FLOPs/param ratio, width profiles, Pareto front, curves, best subnetworks) with CSVs')
    .argument('<run>', 'campaign directory (runs/NAME)')
    .option('--compare <runs...>', 'other campaign directories to compare EDFs with', [])
    .option('--out <dir>', 'output folder (default analysis/<run>)')
    .option('--top-k <k>', 'how many best trials count as winners (default: best 10%, at least 3)', intFlag('--top-k', { min: 1 }))
    .option('--buckets <b>', 'parameter buckets for the FLOPs/param ratio (default: about 8 trials each, 3 to 10)', intFlag('--buckets', { min: 2 }))
    .option('--round <r>', 'analyse only this round (EDFs still compare every round)', intFlag('--round', { min: 0 }))
    .action(async (run: string, opts: Options) => {
      const main = loadCampaign(run);
      if (opts.round !== undefined && !main.trials.some((t) => t.round === opts.round)) {
        throw new UserError(`${run} has no trials in round ${opts.round} (rounds: ${[...new Set(main.trials.map((t) => t.round))].join(', ') || 'none'})`);
      }
      const compare = opts.compare.map(loadCampaign);
      const out = opts.out ?? `analysis/${basename(resolve(run))}`;
      const written = await writeReport(reportCampaign(main), out, { compare: compare.map(reportCampaign), topK: opts.topK, buckets: opts.buckets, rounds: opts.round === undefined ? undefined : [opts.round] });
      const a = written.analysis;
      console.log(`${main.name}: ${a.obs.length} completed of ${a.trialsTotal} trials; best validation error ${a.summary.min === null ? '–' : (100 * a.summary.min).toFixed(2) + '%'}`);
      if (a.ratio.optimum) console.log(`optimal FLOPs/param ratio ${a.ratio.optimum.ratio.toFixed(1)} (95% interval ${a.ratio.optimum.interval.lo.toFixed(1)}-${a.ratio.optimum.interval.hi.toFixed(1)}; original ${a.originalRatio.toFixed(1)})`);
      else console.log(`no optimal FLOPs/param ratio claimed: ${a.ratio.reasons.join('; ')}`);
      if (written.reference) console.log(`${written.reference.finalists ? 'finalists' : 'best'} against the uniform reference: ${written.reference.text}`);
      for (const m of written.missing) console.log(`left out plot ${m.plot}: ${m.reason}`);
      console.log(`wrote ${written.html} and ${written.files.length} data files`);
    });
}
