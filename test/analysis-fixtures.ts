/** Synthetic campaigns for analysis tests: real sampled resnet20 configurations, errors from a planted rule. */
import type { CampaignConfig, TrialRecord } from '../src/campaign/types.js';
import type { Observation } from '../src/analysis/population.js';
import { compileSpace } from '../src/space/compile.js';
import { parseSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';
import type { SpaceFileInput } from '../src/space/schema.js';
import { makeRng, normalDraw } from '../src/util/rng.js';

export const r20Space: SpaceFileInput = {
  name: 'r20-test',
  description: 'resnet20 test space',
  network: { family: 'resnet20', input: '28x28x1', classes: 10 },
  samplers: [
    { select: { kinds: ['stage'] }, keep: { min: 0.25, max: 1 } },
    { select: { kinds: ['inner'] }, keep: { min: 0.1, max: 1 } },
  ],
  regime: { flops: { min: 0.45, max: 0.55 } },
};

/** Box-Muller normal noise from a seeded stream. */
export const gaussian = normalDraw;

/** Observations with fixed FLOPs and chosen ratios; error = f(ratio) + noise. */
export function ratioObservations(n: number, errorOf: (ratio: number) => number, noise: number, seed = 1, ratioRange: [number, number] = [60, 240]): Observation[] {
  const rng = makeRng(seed, 'ratio-obs');
  const flops = 15e6;
  return Array.from({ length: n }, (_, i) => {
    const ratio = Math.exp(Math.log(ratioRange[0]) + rng() * (Math.log(ratioRange[1]) - Math.log(ratioRange[0])));
    const params = Math.round(flops / ratio);
    return {
      index: i, round: 0, error: errorOf(ratio) + noise * gaussian(rng), testError: null,
      widths: [], flops, params, activations: 1000, ratio: flops / params,
    };
  });
}

export interface SyntheticCampaign {
  config: CampaignConfig;
  trials: TrialRecord[];
}

/**
 * A campaign over the resnet20 space whose error is lowest near FLOPs/param `optimumRatio` and where
 * wider stage-3 groups help; a few failed trials ride along.
 */
export function syntheticCampaign(opts: { n?: number; seed?: number; name?: string; optimumRatio?: number; noise?: number; space?: SpaceFileInput; round?: number } = {}): SyntheticCampaign {
  const space = opts.space ?? r20Space;
  const compiled = compileSpace(parseSpace(space, 'synthetic.json'));
  const n = opts.n ?? 80;
  const seed = opts.seed ?? 7;
  const { configs } = sampleSpace(compiled, n, seed);
  const rng = makeRng(seed, 'errors');
  const opt = Math.log(opts.optimumRatio ?? 110);
  const trials: TrialRecord[] = configs.map((c, i) => {
    const ratio = c.complexity.flops / c.complexity.params;
    const stage3 = c.widths[2] / 64;
    const err = 0.1 + 0.08 * (Math.log(ratio) - opt) ** 2 + 0.02 * (1 - stage3) + (opts.noise ?? 0.003) * gaussian(rng);
    const failed = i % 17 === 16;
    const epochs = 3;
    return {
      index: i, round: opts.round ?? 0, widths: c.widths, seed: 1000 + i, complexity: c.complexity,
      state: failed ? 'failed' : 'complete', attempts: 1,
      valError: failed ? null : err, testError: failed ? null : err + 0.002, trainLoss: failed ? null : 0.3,
      curves: failed ? [] : Array.from({ length: epochs }, (_, e) => ({
        epoch: e + 1, trainLoss: 1 / (e + 1), trainError: err + 0.1 / (e + 1), valLoss: 1.1 / (e + 1),
        valError: err + 0.05 * (epochs - 1 - e), lr: 0.1, seconds: 1,
      })),
      wallSeconds: failed ? null : 3, worker: 'w0', error: failed ? 'out of memory' : null,
    } as TrialRecord;
  });
  const config = {
    name: opts.name ?? 'synthetic', space, spacePath: 'spaces/synthetic.json',
    net: { family: 'resnet20', input: [28, 28, 1], classes: 10 },
    settings: {} as CampaignConfig['settings'], samples: n, seed, createdAt: '2026-01-01T00:00:00Z', versions: {}, backend: 'synthetic',
  } as CampaignConfig;
  return { config, trials };
}

/**
 * Writes a synthetic campaign through the store's write API (no training), with its round-0 space file beside it;
 * `finished` trials (default all) are trained, the rest left waiting.
 */
export async function writeSyntheticStore(dir: string, c: SyntheticCampaign, finished = c.trials.length): Promise<void> {
  const { mkdirSync, writeFileSync } = await import('node:fs');
  const { join } = await import('node:path');
  const { createCampaignStore } = await import('../src/campaign/store.js');
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'space-r0.json'), JSON.stringify(c.config.space, null, 2));
  const config = { ...c.config, groups: [], maxAttempts: 2 } as CampaignConfig;
  const round = { round: 0, spaceFile: 'space-r0.json', space: c.config.space, samples: c.trials.length, sampleSeed: c.config.seed, sampleAttempts: c.trials.length, acceptanceRate: 1, createdAt: c.config.createdAt };
  const store = createCampaignStore(dir, config, round, c.trials.map((t) => ({ index: t.index, widths: t.widths, seed: t.seed, complexity: t.complexity, role: t.role, finalistOf: t.finalistOf, seedIndex: t.seedIndex })));
  for (const t of c.trials.slice(0, finished)) {
    const attempt = store.start(t.index, { worker: 'w0', leaseMs: 60_000, maxAttempts: 2 });
    store.finish(
      attempt,
      t.state === 'complete'
        ? { status: 'complete', valError: t.valError as number, testError: t.testError as number, trainLoss: 0.3, curves: t.curves, wallSeconds: 3, backend: 'synthetic' }
        : { status: 'failed', error: t.error ?? 'failed', curves: [], wallSeconds: 1, backend: 'synthetic' },
      'w0',
    );
  }
  store.close();
}
