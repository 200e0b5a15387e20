/**
 * Calibration and power of `refine` at its defaults (alpha 0.1, 999 permutations), on simulated campaigns
 * of two shipped spaces: each campaign samples its own configurations and draws errors from a model.
 *   null:  pure noise, 48 and 200 trials, CAMPAIGNS campaigns a case (Wilson and Clopper-Pearson 95% intervals);
 *   power: error falling with params inside the regime at Spearman rho (0.2 .. 0.6) x trials (24 .. 200).
 * Writes results.json and results.md beside this file. Run from the repository root:
 *   node --import tsx analysis/refine-calibration/run.ts [CAMPAIGNS=500] [POWER_CAMPAIGNS=200]
 */
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { clopperPearson, noiseErrors, paramsEffect, simulatedRefineRates, type CampaignRates } from '../../src/analysis/calibration.js';
import { compileSpace } from '../../src/space/compile.js';
import { loadSpace } from '../../src/space/load.js';

const here = dirname(fileURLToPath(import.meta.url));
const campaigns = Number(process.argv[2] ?? 500);
const powerCampaigns = Number(process.argv[3] ?? 200);
const spaces = ['resnet20-fmnist', 'vgg16-cifar10'];
const pct = (x: number) => `${(100 * x).toFixed(1)}%`;

const nulls: (CampaignRates & { space: string; clopper: [number, number]; seconds: number })[] = [];
for (const space of spaces) {
  const parent = loadSpace(`spaces/${space}.json`);
  const c = compileSpace(parent);
  for (const trials of [48, 200]) {
    const t = Date.now();
    const r = simulatedRefineRates(parent, c.original.flops / c.original.params, noiseErrors, { campaigns, trials, seed: 1 });
    const row = { space, ...r, clopper: clopperPearson(Math.round(r.anyChange * campaigns), campaigns), seconds: (Date.now() - t) / 1000 };
    nulls.push(row);
    console.log(`null ${space} ${trials}: ${pct(r.anyChange)} (Wilson ${pct(r.wilson[0])}-${pct(r.wilson[1])}) ${row.seconds}s`);
  }
}

const effects = [0.2, 0.3, 0.45, 0.6];
const sizes = [24, 48, 96, 200];
const parent = loadSpace('spaces/resnet20-fmnist.json');
const c = compileSpace(parent);
const power: { spearman: number; trials: number; anyChange: number; wilson: [number, number]; applied: Record<string, number> }[] = [];
for (const spearman of effects) {
  for (const trials of sizes) {
    const r = simulatedRefineRates(parent, c.original.flops / c.original.params, paramsEffect(spearman), { campaigns: powerCampaigns, trials, seed: 2 });
    power.push({ spearman, trials, anyChange: r.anyChange, wilson: r.wilson, applied: r.applied });
    console.log(`power rho ${spearman} n ${trials}: ${pct(r.anyChange)}`);
  }
}

const machine = `${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), shared with other jobs`;
writeFileSync(join(here, 'results.json'), JSON.stringify({ campaigns, powerCampaigns, alpha: 0.1, permutations: 999, machine, nulls, power }, null, 2) + '\n');
const md = [
  `# refine: calibration and power (alpha 0.1, 999 permutations, ${machine})`,
  '',
  `Null: pure-noise errors, ${campaigns} simulated campaigns a case, each sampling its own configurations.`,
  '',
  '| space | trials | changed the space | Wilson 95% | Clopper-Pearson 95% | ratio | ranges | monotone | seconds |',
  '|---|---|---|---|---|---|---|---|---|',
  ...nulls.map((r) => `| ${r.space} | ${r.trials} | ${pct(r.anyChange)} | ${pct(r.wilson[0])}-${pct(r.wilson[1])} | ${pct(r.clopper[0])}-${pct(r.clopper[1])} | ${pct(r.applied.ratio ?? 0)} | ${pct(r.applied.ranges ?? 0)} | ${pct(r.applied.monotone ?? 0)} | ${r.seconds.toFixed(0)} |`),
  '',
  `Power: error falling with params inside the regime of resnet20-fmnist at population Spearman rho, noise otherwise; share of ${powerCampaigns} campaigns in which refine changed the space.`,
  '',
  `| rho \\ trials | ${sizes.join(' | ')} |`,
  `|---|${sizes.map(() => '---').join('|')}|`,
  ...effects.map((e) => `| ${e} | ${sizes.map((n) => pct(power.find((p) => p.spearman === e && p.trials === n)!.anyChange)).join(' | ')} |`),
  '',
].join('\n');
writeFileSync(join(here, 'results.md'), md);
console.log(md);
