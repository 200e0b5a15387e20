/**
 * The claims' figures, read from what `run.sh analyse` wrote under results/ (each campaign's report summary.json)
 * claim 3's run JSONs under results/claim3-rNN/ and compute.tsv: one markdown file, results/claims.md, so the write-up quotes numbers a script produced.
 * Usage: node --import tsx analysis/pruning-spaces-fmnist/claims.ts
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyseRatio } from '../../src/analysis/buckets.js';
import { spearmanWithInterval } from '../../src/analysis/fidelity.js';
import { observations, type TrialLike } from '../../src/analysis/population.js';
import { permutation } from '../../src/training/data/prepare.js';
import { studentQuantile } from '../../src/analysis/significance.js';
import { makeRng } from '../../src/util/rng.js';

const here = dirname(fileURLToPath(import.meta.url));
const results = join(here, 'results');

interface Interval { lo: number; hi: number }
interface Summary {
  trials: number;
  completed: number;
  ratio: {
    original: number;
    optimum: null | { ratio: number; interval: Interval; band: [number, number]; interiorShare: number; error: number };
    bucketOptimum: null | { ratio: number; meanError: number; ratioInterval: Interval; share: number; atEdge: boolean };
    reasons: string[];
  };
  fidelity: {
    seedNoise: { rung0?: { sd: number; df: number }; top?: { rung: number; sd: number; df: number } };
    structure?: { share: number; interval: [number, number]; populationSd: number; populationN: number };
    promoted?: { rung: number; seed: { sd: number; df: number }; structure: { share: number | null; interval: [number, number] | null; populationSd: number | null; populationN: number } }[];
    ranking?: { rho: number | null; interval: [number, number] | null; n: number };
    warning?: string;
  };
  reference: { text: string; seeds: number; mean?: number; sd?: number };
}

const pts = (x: number) => (100 * x).toFixed(2);
const r1 = (x: number) => x.toFixed(1);

function claim1(name: string, s: Summary): string[] {
  const { ratio, fidelity } = s;
  const out = [`### ${name}`, '', `- trials complete: ${s.completed} of ${s.trials}`];
  out.push(`- the original network's FLOPs/param ratio: ${r1(ratio.original)}`);
  if (ratio.optimum) {
    const o = ratio.optimum;
    out.push(`- supported interior optimum: ratio ${r1(o.ratio)} (95% bootstrap interval ${r1(o.interval.lo)}-${r1(o.interval.hi)}, interior in ${(100 * o.interiorShare).toFixed(0)}% of resamples), fitted error ${pts(o.error)}%, within 0.5 points of it over ${r1(o.band[0])}-${r1(o.band[1])}; ${(o.ratio / ratio.original).toFixed(2)}x the original's ratio`);
  } else {
    out.push(`- no supported optimum: ${ratio.reasons.join('; ')}`);
  }
  if (ratio.bucketOptimum) {
    const b = ratio.bucketOptimum;
    out.push(`- lowest-error bucket: ratio ${r1(b.ratio)} (mean error ${pts(b.meanError)}%), 95% interval ${r1(b.ratioInterval.lo)}-${r1(b.ratioInterval.hi)}, chosen in ${(100 * b.share).toFixed(0)}% of resamples${b.atEdge ? ', an edge bucket' : ''}`);
  }
  const { rung0, top } = fidelity.seedNoise;
  if (rung0) out.push(`- seed sd at rung 0: ${pts(rung0.sd)} points (df ${rung0.df})${top ? `; at rung ${top.rung}: ${pts(top.sd)} points (df ${top.df})` : ''}`);
  if (fidelity.structure) {
    const st = fidelity.structure;
    out.push(`- structure share of rung-0 variance: ${(100 * st.share).toFixed(0)}% (95% interval ${(100 * st.interval[0]).toFixed(0)}-${(100 * st.interval[1]).toFixed(0)}%; population sd ${pts(st.populationSd)} points over ${st.populationN})`);
  }
  for (const p of fidelity.promoted ?? []) {
    const st = p.structure;
    if (st.share === null || !st.interval) continue;
    out.push(`- structure share at rung ${p.rung} among the ${st.populationN} promoted: ${(100 * st.share).toFixed(0)}% (95% interval ${(100 * st.interval[0]).toFixed(0)}-${(100 * st.interval[1]).toFixed(0)}%; their sd ${pts(st.populationSd!)} points, seed sd ${pts(p.seed.sd)} points, df ${p.seed.df}; errs low, as they were chosen on the rung below)`);
  }
  out.push(...ratioAbove0(name, s.ratio.original));
  if (fidelity.ranking?.rho == null) out.push(`- rung 0 against the top rung: no rank correlation yet (${fidelity.ranking?.n ?? 0} candidates at both rungs)`);
  else if (fidelity.ranking.interval) out.push(`- rung 0 against the top rung, Spearman: ${fidelity.ranking.rho.toFixed(2)} (95% interval ${fidelity.ranking.interval.map((x) => x.toFixed(2)).join(' to ')}, n ${fidelity.ranking.n})`);
  if (fidelity.warning) out.push(`- fidelity warning: ${fidelity.warning}`);
  out.push(`- finalists against the uniform reference: ${s.reference.text}`);
  return out;
}

/**
 * The ratio analysis again on the promoted candidates' errors at each rung above 0 (the campaign's own analysis uses
 * rung 0, where every candidate has a result), and Spearman of error against FLOPs/param among them; read from the
 * store's trials.jsonl, which `run.sh analyse` copies into results/.
 */
function ratioAbove0(name: string, original: number): string[] {
  const file = join(results, `${name}-trials.jsonl`);
  if (!existsSync(file)) return [];
  const trials = readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TrialLike);
  const top = Math.max(0, ...trials.flatMap((t) => (t.rungResults ?? []).map((r) => r.rung)));
  const out: string[] = [];
  for (let rung = 1; rung <= top; rung++) {
    const obs = observations(trials, rung);
    if (obs.length < 3) continue;
    const rho = spearmanWithInterval(obs.map((o) => o.ratio), obs.map((o) => o.error));
    const a = analyseRatio(obs, { originalRatio: original, seed: `claims/${name}/rung-${rung}` });
    const optimum = a.optimum
      ? `supported optimum at ratio ${r1(a.optimum.ratio)} (95% interval ${r1(a.optimum.interval.lo)}-${r1(a.optimum.interval.hi)})`
      : `no supported optimum (${a.reasons.join('; ')})`;
    const bucket = a.bucketOptimum
      ? `; lowest-error bucket ratio ${r1(a.bucketOptimum.ratio)} (${pts(a.bucketOptimum.meanError)}%, chosen in ${(100 * a.bucketOptimum.share).toFixed(0)}% of resamples${a.bucketOptimum.atEdge ? ', an edge bucket' : ''})`
      : '';
    // How often the same analysis claims an optimum when the errors are shuffled across the candidates (no relation
    // to the ratio by construction): its firing rate on noise at this design, and so the claim's permutation p.
    let nullClaims = 0;
    const rng = makeRng(`claims/${name}`, `rung-${rung}/permutations`);
    for (let k = 0; k < PERMUTATIONS; k++) {
      const order = permutation(obs.length, rng);
      const shuffled = obs.map((o, i) => ({ ...o, error: obs[order[i]].error }));
      if (analyseRatio(shuffled, { originalRatio: original, seed: `claims/${name}/rung-${rung}/null-${k}`, samples: 400 }).optimum) nullClaims++;
    }
    const fires = `; on shuffled errors the same analysis claims an optimum in ${nullClaims} of ${PERMUTATIONS} (permutation p ${((nullClaims + 1) / (PERMUTATIONS + 1)).toFixed(3)})`;
    const corr = rho.rho === null ? 'no rank correlation' : `Spearman of error against ratio ${rho.rho.toFixed(2)}${rho.interval ? ` (95% interval ${rho.interval.map((x) => x.toFixed(2)).join(' to ')})` : ''}`;
    out.push(`- rung ${rung}, the ${obs.length} promoted: ${corr}; ${optimum}${a.optimum ? fires : ''}${bucket}`);
  }
  return out;
}

const PERMUTATIONS = 200;

/** One trained network of claim 3: `prune --json` (metrics) or `train --json` (top level). */
interface Run {
  name: string;
  group: string;
  flops: number;
  params: number;
  testError: number;
  /** Fine-tuned without precise BN: the error its fine-tuning recorded with the running averages (testError is then recalibrate.ts's). */
  runningAverageTestError?: number;
  prunedTestError?: number;
  recalibratedTestError?: number;
  widths: number[];
}

const mean = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
const sd = (xs: readonly number[]) => Math.sqrt(xs.reduce((a, x) => a + (x - mean(xs)) ** 2, 0) / Math.max(1, xs.length - 1));

/**
 * Welch's 90% interval for mean(a) - mean(b), in points (different networks' seeds share nothing, so unpaired); with
 * `family` > 1, also the Bonferroni interval that holds at 90% for all `family` comparisons together.
 */
function welch(a: readonly number[], b: readonly number[], family = 1): string {
  const va = sd(a) ** 2 / a.length, vb = sd(b) ** 2 / b.length;
  const df = (va + vb) ** 2 / (va ** 2 / (a.length - 1) + vb ** 2 / (b.length - 1));
  const d = mean(a) - mean(b), se = Math.sqrt(va + vb), half = studentQuantile(0.95, df) * se;
  const sign = (x: number) => `${x >= 0 ? '+' : ''}${pts(x)}`;
  const joint = family > 1 ? studentQuantile(1 - 0.05 / family, df) * se : 0;
  return `${sign(d)} (90% interval ${sign(d - half)} to ${sign(d + half)}${family > 1 ? `; all ${family} together: ${sign(d - joint)} to ${sign(d + joint)}` : ''})`;
}

/** Claim 3's runs of one regime, each final error with BN re-estimated (see below). */
function claim3Runs(regime: string): Run[] {
  const dir = join(results, `claim3-r${regime}`);
  if (!existsSync(dir)) return [];
  // recalibrate.ts's figures for pruned networks made before `prune` recorded the re-estimated error itself.
  const recalibratedFile = join(dir, 'recalibrated.json');
  const recalibratedByFile: Record<string, number> = existsSync(recalibratedFile) ? JSON.parse(readFileSync(recalibratedFile, 'utf8')) : {};
  // Every final error with BN re-estimated at the final weights (16 batches): train's default for the scratch runs and
  // the parent; recalibrate.ts's for networks fine-tuned before `prune` had precise BN.
  const tunedFile = join(dir, 'fine-tuned-recalibrated.json');
  const tunedByFile: Record<string, number> = existsSync(tunedFile) ? JSON.parse(readFileSync(tunedFile, 'utf8')) : {};
  return readdirSync(dir).filter((f) => /^(pruned|scratch)-.*-s\d+\.json$/.test(f)).map((f) => {
    const j = JSON.parse(readFileSync(join(dir, f), 'utf8'));
    const group = f.replace(/-s\d+\.json$/, '');
    const recorded = j.metrics?.testError ?? j.testError;
    const tuned = tunedByFile[f];
    return {
      name: f, group, flops: j.complexity.flops, params: j.complexity.params, testError: tuned ?? recorded, ...(tuned !== undefined ? { runningAverageTestError: recorded } : {}),
      prunedTestError: j.metrics?.prunedTestError, recalibratedTestError: j.metrics?.prunedRecalibratedTestError ?? recalibratedByFile[f], widths: j.widths,
    };
  }).filter((r) => Number.isFinite(r.testError));
}

/**
 * Claim 3 from the runs `run.sh analyse` copies into results/claim3-rNN/: the 15-epoch parent, the pruned and
 * fine-tuned networks (pruned-CRITERION-sSEED.json) and, once run, the scratch networks at equal total epochs
 * (scratch-NAME-sSEED.json). Until the scratch runs exist, the claim-1 campaign's 4-epoch uniform seeds are shown at
 * their own, unequal budget, which is not claim 3's comparison.
 */
function claim3(regime: string): string[] {
  const dir = join(results, `claim3-r${regime}`);
  const runs = claim3Runs(regime);
  const parentFile = join(dir, 'parent-15ep.json');
  const parent = existsSync(parentFile) ? JSON.parse(readFileSync(parentFile, 'utf8')) : null;
  const out = [`### ${regime}% of FLOPs`, ''];
  if (parent) out.push(`- parent: full-width ResNet-20, 15 epochs, test error ${pts(parent.testError)}%, ${(parent.complexity.flops / 1e6).toFixed(2)}M FLOPs`, '');
  const groups = [...new Set(runs.map((r) => r.group))].sort();
  const uniform = runs.filter((r) => r.group === 'scratch-uniform').map((r) => r.testError);
  const jsonl = join(results, `claims-r${regime}-trials.jsonl`);
  const claim1 = uniform.length >= 2 || !existsSync(jsonl) ? [] : readFileSync(jsonl, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as TrialLike)
    .filter((t) => t.state === 'complete' && Number.isFinite(t.testError));
  const ref4 = claim1.filter((t) => t.role === 'reference').map((t) => t.testError as number);
  const against = uniform.length >= 2 ? uniform : ref4;
  const label = uniform.length >= 2 ? 'uniform, 20 epochs from scratch' : 'the claim-1 uniform reference (4 epochs: unequal budget)';
  out.push(`| network | epochs in all | FLOPs | seeds | test error after pruning (parent's BN / re-estimated) | test error (BN re-estimated) | against ${label}, points |`, '|---|---|---|---|---|---|---|');
  for (const g of groups) {
    const rs = runs.filter((r) => r.group === g), errs = rs.map((r) => r.testError);
    const pruned = rs.map((r) => r.prunedTestError).filter((x): x is number => x !== undefined);
    const recalibrated = rs.map((r) => r.recalibratedTestError).filter((x): x is number => x !== undefined);
    const afterPruning = pruned.length ? `${pts(mean(pruned))}%${recalibrated.length ? ` / ${pts(mean(recalibrated))}%` : ''}` : '';
    const epochs = g.startsWith('pruned') ? '15 + 5' : '20';
    const diff = g !== 'scratch-uniform' && errs.length >= 2 && against.length >= 2 ? welch(errs, against) : '';
    out.push(`| ${g} | ${epochs} | ${(mean(rs.map((r) => r.flops)) / 1e6).toFixed(2)}M | ${errs.length} | ${afterPruning} | ${pts(mean(errs))}% ± ${pts(sd(errs))} | ${diff} |`);
  }
  if (ref4.length) out.push(`| claim-1 uniform reference | 4 | | ${ref4.length} | | ${pts(mean(ref4))}% ± ${pts(sd(ref4))} | |`);
  for (const of of [...new Set(claim1.filter((t) => t.role === 'finalist').map((t) => t.finalistOf))]) {
    const seeds = claim1.filter((t) => t.role === 'finalist' && t.finalistOf === of), errs = seeds.map((t) => t.testError as number);
    out.push(`| claim-1 finalist (trial ${of}) | 4 | ${(seeds[0].complexity.flops / 1e6).toFixed(2)}M | ${errs.length} | | ${pts(mean(errs))}% ± ${pts(sd(errs))} | ${welch(errs, ref4)} |`);
  }
  // Claim 3 proper: each finalist trained from scratch against each pruning method at equal total epochs.
  const finalists = groups.filter((g) => g.startsWith('scratch-finalist'));
  const methods = groups.filter((g) => g.startsWith('pruned-'));
  const errsOf = (g: string) => runs.filter((r) => r.group === g).map((r) => r.testError);
  const pairs = finalists.flatMap((f) => methods.map((m) => [f, m] as const)).filter(([f, m]) => errsOf(f).length >= 2 && errsOf(m).length >= 2);
  if (pairs.length) {
    out.push('', `- finalists from scratch against pruning (points; ${pairs.length} comparisons: each interval at 90% on its own, then Bonferroni's, at 90% for all of them together):`);
    for (const [f, m] of pairs) out.push(`  - ${f} against ${m}: ${welch(errsOf(f), errsOf(m), pairs.length)}`);
  }
  const running = groups.map((g) => [g, runs.filter((r) => r.group === g && r.runningAverageTestError !== undefined).map((r) => r.runningAverageTestError!)] as const).filter(([, xs]) => xs.length);
  if (running.length) {
    out.push('', `- test errors above are all with BN statistics re-estimated at the final weights on 16 training batches (train's default); fine-tuning of the pruned networks recorded them with the running averages: ${running.map(([g, xs]) => `${g} ${pts(mean(xs))}% ± ${pts(sd(xs))}`).join(', ')}`);
  }
  if (!uniform.length) out.push('', '- the scratch runs at equal total epochs (the finalists and the uniform network, 20 epochs, 5 seeds each) are not run yet: `run.sh claim3 ' + regime + '`');
  return out;
}

/**
 * Issue 20's seed 002 at this scale, from `run.sh distill`'s runs under results/distill-rNN/: claim 3's parent
 * distilled without labels, L1 + fine-tuning at each distilled network's widths, and those widths from scratch; claim
 * 3's pruned (global allocation) and uniform runs are the other rows (same parent, seeds and recipe).
 */
function labelFree(regime: string): string[] {
  const dir = join(results, `distill-r${regime}`);
  const read = (prefix: string) => (existsSync(dir) ? readdirSync(dir) : []).filter((f) => new RegExp(`^${prefix}-s\\d+\\.json$`).test(f))
    .map((f) => JSON.parse(readFileSync(join(dir, f), 'utf8')))
    .map((j) => ({ testError: (j.metrics?.testError ?? j.testError) as number, flops: j.complexity.flops as number, params: j.complexity.params as number, widths: j.widths as number[] }))
    .filter((r) => Number.isFinite(r.testError));
  const claim3 = claim3Runs(regime);
  const of = (group: string) => claim3.filter((r) => r.group === group);
  const rows: [string, string, ReturnType<typeof read>][] = [
    ['distill (no labels)', '15 + 5', read('distill')],
    ['L1 + fine-tune at the distilled widths', '15 + 5', read('l1dw')],
    ['the distilled widths from scratch', '20', read('scratchdw')],
    ['L1 + fine-tune, global allocation (claim 3)', '15 + 5', of('pruned-l1')],
    ['Taylor + fine-tune, global allocation (claim 3)', '15 + 5', of('pruned-taylor')],
    ['BN-scale + fine-tune, global allocation (claim 3)', '15 + 5', of('pruned-bn-scale')],
    ['uniform from scratch (claim 3)', '20', of('scratch-uniform')],
  ];
  const distilled = rows[0][2];
  const out = [`### ${regime}% of FLOPs`, ''];
  if (!distilled.length) return [...out, `Not run yet (\`run.sh distill ${regime}\`).`];
  const parentFile = join(results, `claim3-r${regime}`, 'parent-15ep.json');
  const parent = existsSync(parentFile) ? JSON.parse(readFileSync(parentFile, 'utf8')) : null;
  if (parent) out.push(`- parent (the teacher): full-width ResNet-20, 15 epochs, test error ${pts(parent.testError)}%, ${(parent.complexity.flops / 1e6).toFixed(2)}M FLOPs`, '');
  out.push('| network | epochs in all | FLOPs | seeds | test error (BN re-estimated) | distill against it, points |', '|---|---|---|---|---|---|');
  const d = distilled.map((r) => r.testError);
  for (const [name, epochs, rs] of rows) {
    if (!rs.length) continue;
    const errs = rs.map((r) => r.testError);
    const vs = rs !== distilled && errs.length >= 2 && d.length >= 2 ? welch(d, errs) : '';
    out.push(`| ${name} | ${epochs} | ${(mean(rs.map((r) => r.flops)) / 1e6).toFixed(2)}M | ${errs.length} | ${pts(mean(errs))}% ± ${pts(sd(errs))} | ${vs} |`);
  }
  if (parent) out.push('', `- distill against the parent: ${d.length} seeds, ${pts(mean(d) - parent.testError)} points (${pts(mean(d))}% against ${pts(parent.testError)}%)`);
  out.push('', '- distilled widths: ' + distilled.map((r) => `${r.widths.join(',')} (${(r.params / 1e3).toFixed(0)}K params)`).join('; '));
  return out;
}

function compute(): string[] {
  const file = join(here, 'compute.tsv');
  if (!existsSync(file)) return ['No compute recorded.'];
  const rows = readFileSync(file, 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  const byPart = new Map<string, { wall: number; cpu: number; sittings: number }>();
  for (const [part, , wall, cpu] of rows) {
    const p = byPart.get(part) ?? { wall: 0, cpu: 0, sittings: 0 };
    p.wall += Number(wall);
    p.cpu += Number(cpu);
    p.sittings += 1;
    byPart.set(part, p);
  }
  const out = ['| part | sittings | wall hours | core-hours (CPU time) |', '|---|---|---|---|'];
  for (const [part, p] of byPart) out.push(`| ${part} | ${p.sittings} | ${(p.wall / 3600).toFixed(2)} | ${(p.cpu / 3600).toFixed(2)} |`);
  return out;
}

const lines = ['# Claims: the figures', '', 'Written by `claims.ts` from `results/*/summary.json` and `compute.tsv`.', '', '## Claim 1: an optimal FLOPs/param ratio per regime', ''];
const campaigns = existsSync(results) ? readdirSync(results).filter((d) => /^claims-r\d+$/.test(d) && existsSync(join(results, d, 'summary.json'))) : [];
if (campaigns.length === 0) lines.push('No claim-1 campaign analysed yet (`run.sh analyse`).');
for (const name of campaigns) lines.push(...claim1(name, JSON.parse(readFileSync(join(results, name, 'summary.json'), 'utf8'))), '');
lines.push('## Claim 3: the search against pruning a converged parent', '');
const claim3Dirs = existsSync(results) ? readdirSync(results).filter((d) => /^claim3-r\d+$/.test(d)) : [];
if (claim3Dirs.length === 0) lines.push('Not run yet (`run.sh claim3 25|50`).', '');
for (const d of claim3Dirs) lines.push(...claim3(d.slice('claim3-r'.length)), '');
lines.push('## Label-free compression of the claim-3 parent (issue 20, seed 002)', '');
const distillDirs = existsSync(results) ? readdirSync(results).filter((d) => /^distill-r\d+$/.test(d)) : [];
if (distillDirs.length === 0) lines.push('Not run yet (`run.sh distill 25|50`).', '');
for (const d of distillDirs) lines.push(...labelFree(d.slice('distill-r'.length)), '');
lines.push('## Compute', '', ...compute(), '');
writeFileSync(join(results, 'claims.md'), lines.join('\n'));
console.log(lines.join('\n'));
