/** `prunespace refine`: a child space narrowed around a campaign's winners, each rule justified or skipped with its reason. */
import type { Command } from 'commander';
import { loadCampaign } from '../../analysis/campaign.js';
import { refineCampaign } from '../../analysis/refine-campaign.js';
import { REFINE_RULES, REMOVED_RULES, type RefineRule } from '../../analysis/refine.js';
import { UserError } from '../../util/errors.js';
import { intFlag } from '../parse.js';
import { parseSpace } from '../../space/load.js';
import { latencyModelFor } from '../latency.js';

interface Options {
  rules: RefineRule[];
  out?: string;
  round?: number;
  rung?: number;
  force?: boolean;
  topK?: number;
  buckets?: number;
}

function rulesFlag(value: string): RefineRule[] {
  const rules = value.split(',').map((s) => s.trim()).filter(Boolean);
  const removed = rules.find((r) => REMOVED_RULES[r]);
  if (removed) throw new UserError(`--rules: ${REMOVED_RULES[removed]}`);
  const unknown = rules.filter((r) => !(REFINE_RULES as readonly string[]).includes(r));
  if (unknown.length || !rules.length) throw new UserError(`--rules expects a comma-separated subset of ${REFINE_RULES.join(',')}, got '${value}'`);
  return [...new Set(rules)] as RefineRule[];
}

export function registerRefine(program: Command): void {
  program
    .command('refine')
    .description("Write a child space narrowed around a campaign's winners (FLOPs/param window, monotone widths, keep ranges); every candidate change of every rule is judged by one permutation test (max-T), so noise changes the space at most 10% of the time")
    .argument('<run>', 'campaign directory (runs/NAME)')
    .option('--rules <list>', `rules to try, comma-separated (${REFINE_RULES.join(',')})`, rulesFlag, [...REFINE_RULES])
    .option('--out <file>', 'child space file (default spaces/<run>.r<k>.json)')
    .option('--round <r>', "round whose trials and space are refined (default: the last)", intFlag('--round', { min: 0 }))
    .option('--rung <r>', "a campaign in rungs: judge on the errors at rung r of the candidates promoted to it (default 0, every candidate; above it fewer candidates, chosen on the rung below, but trained longer)", intFlag('--rung', { min: 0 }))
    .option('--force', 'replace an existing output file')
    .option('--top-k <k>', 'how many best trials count as winners (default: best 10%, at least 3)', intFlag('--top-k', { min: 1 }))
    .option('--buckets <b>', 'parameter buckets for the FLOPs/param ratio (default: about 8 trials each, 3 to 10)', intFlag('--buckets', { min: 2 }))
    .action(async (run: string, opts: Options) => {
      const campaign = loadCampaign(run);
      // A latency regime's kept share is of its latency window too: the predictor is read from the table the campaign recorded.
      const { config } = campaign;
      const latency = await latencyModelFor(parseSpace(config.space, config.spacePath), {
        file: config.latencyModel?.table,
        log: (line) => process.stderr.write(`prunespace: ${line}\n`),
      });
      const result = refineCampaign(campaign, {
        ...(latency ? { predictLatency: latency.predict } : {}),
        rules: opts.rules,
        out: opts.out,
        round: opts.round,
        force: opts.force,
        analysis: { topK: opts.topK, ratio: opts.buckets ? { buckets: opts.buckets } : undefined, rung: opts.rung },
      });
      console.log(`${campaign.name} round ${result.round}: refined ${result.parentPath} -> ${result.out}`);
      const v = (result.child.provenance as { validation?: { candidates: number; permutations: number; alpha: number } }).validation;
      if (v?.candidates) {
        const { rung, candidates } = result.judged;
        const on = rung ? `the rung-${rung} error of the ${candidates} candidates promoted to it` : "every trial's rung-0 error";
        console.log(`${v.candidates} candidate changes judged together on ${on}, adjusted for FLOPs: ` +
          `max-T over ${v.permutations} permutations, family-wise false-refinement rate ${v.alpha}`);
      }
      for (const o of result.outcomes) console.log(`  ${o.applied ? 'applied' : 'skipped'} ${o.rule}: ${o.reason}`);
      const pct = (100 * result.kept.share).toFixed(1);
      console.log(`the child keeps ${pct}% of the parent space (estimated from ${result.kept.samples} parent samples${latency ? ' inside its latency window' : ''})`);
    });
}
