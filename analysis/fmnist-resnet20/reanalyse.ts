/**
 * Reanalyses the worked example from its committed CSVs with the current rules: regenerates the report
 * (round 0's analyses, both rounds' EDFs), refines round 0's space again (space-r1-reanalysed.json), and
 * prints round 1 against round 0 with a permutation p-value. Run from the repository root:
 *   node --import tsx analysis/fmnist-resnet20/reanalyse.ts
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { analyseCampaign } from '../../src/analysis/analyse.js';
import { compareEdfs, compareRounds } from '../../src/analysis/compare.js';
import { observations } from '../../src/analysis/population.js';
import { refineSpace } from '../../src/analysis/refine.js';
import { writeReport } from '../../src/analysis/report/write.js';
import { complexity } from '../../src/complexity/count.js';
import { buildNet } from '../../src/nets/registry.js';
import { loadSpace, writeSpace } from '../../src/space/load.js';
import { campaignSeed, here, loadTrials, net } from './trials.js';

const trials = loadTrials();
const spec = buildNet(net);
for (const t of trials) {
  const c = complexity(spec, t.widths);
  if (c.flops !== t.complexity.flops || c.params !== t.complexity.params) throw new Error(`trial ${t.index}: widths do not give the recorded complexity`);
}
const parent = loadSpace(join(here, 'space-r0.json'));
const written = await writeReport(
  { name: 'fmnist-resnet20', spaceName: parent.file.name, description: parent.file.description, net, seed: campaignSeed, trials },
  here,
  { rounds: [0] },
);
console.log(`report: ${written.html}`);

const analysis = analyseCampaign({ name: 'fmnist-resnet20', net, trials, seed: campaignSeed }, { rounds: [0] });
const out = join(here, 'space-r1-reanalysed.json');
const refined = refineSpace(parent, analysis, {
  name: 'fmnist-resnet20.r1',
  parentRef: 'space-r0.json',
  campaign: { dir: '../../runs/fmnist-resnet20', name: 'fmnist-resnet20', round: 0, seed: campaignSeed, space: parent.file.name },
  seed: campaignSeed,
  date: '2026-11-25',
});
writeSpace(out, refined.child, { force: true });
for (const o of refined.outcomes) console.log(`${o.applied ? 'applied' : 'skipped'} ${o.rule}: ${o.reason}`);
console.log(`child keeps ${(100 * refined.kept.share).toFixed(1)}% of the parent; written to ${out}`);

const obs = observations(trials);
const round = (r: number) => obs.filter((o) => o.round === r);
const rounds = compareRounds(round(0).map((o) => o.error), round(1).map((o) => o.error), { seed: `${campaignSeed}/round1` });
const [, r1] = compareEdfs([{ label: 'round 0', obs: round(0) }, { label: 'round 1', obs: round(1) }]);
console.log(`round 1 vs round 0: KS ${rounds?.ks.toFixed(3)} (permutation p ${rounds?.pValue.toFixed(3)}, ${rounds?.permutations} shuffles); ` +
  `normalised KS on shared bins ${r1.ksNormalized?.toFixed(3)}, shares in shared bins ${JSON.stringify(r1.sharedShare)}`);

// The window the original params rule applied (space-r1.json, which round 1 sampled from): inside against outside.
const window = loadSpace(join(here, 'space-r1.json')).file.regime.params as { min: number; max: number };
const inWindow = (o: { params: number }) => o.params >= window.min && o.params <= window.max;
const mean = (xs: number[]) => xs.reduce((s, x) => s + x, 0) / xs.length;
const paramsWindow = {
  window: [window.min, window.max],
  round0Inside: { n: round(0).filter(inWindow).length, mean: mean(round(0).filter(inWindow).map((o) => o.error)) },
  round0Outside: { n: round(0).filter((o) => !inWindow(o)).length, mean: mean(round(0).filter((o) => !inWindow(o)).map((o) => o.error)) },
  round1: { n: round(1).length, mean: mean(round(1).map((o) => o.error)) },
};
console.log(`original params window ${JSON.stringify(paramsWindow)}`);
const ratios = round(0).map((o) => o.ratio).sort((a, b) => a - b);
const q = (p: number) => ratios[Math.round(p * (ratios.length - 1))];
writeFileSync(
  join(here, 'reanalysis.json'),
  JSON.stringify({ rules: refined.outcomes.map((o) => ({ rule: o.rule, applied: o.applied, reason: o.reason })), keptShare: refined.kept, rounds, sharedBins: { ks: r1.ksNormalized, share: r1.sharedShare }, paramsWindow, round0Ratio: { p25: q(0.25), median: q(0.5), p75: q(0.75) } }, null, 2) + '\n',
);
