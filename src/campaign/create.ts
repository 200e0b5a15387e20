/** Setting up a campaign: validate the space, sample round 0, and store it, or recognise the same campaign again. */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { compileSpace, type LatencyPredictor } from '../space/compile.js';
import { loadSpace } from '../space/load.js';
import { uniformReference } from '../space/uniform.js';
import type { TrainSettings } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { formatCount } from '../util/format.js';
import { deriveSeed } from '../util/rng.js';
import { resolveCampaignBackend } from './backend.js';
import { roundSpaceFile, sampleRoundTrials } from './rounds.js';
import { createCampaignStore, isCampaignDir, openCampaign, type NewTrial } from './store.js';
import { checkCampaignInit, PARENT_DIR, PARENT_DRAFT } from './parent.js';
import type { CampaignConfig, CampaignInit, ReferencePlan, RoundRecord, RungsPlan } from './types.js';
import { plannedRungSizes } from './rungs.js';
import { trainImageCount } from '../training/data/load.js';
import { rungStopSteps, runLength } from '../training/train.js';
import { packageVersions } from './versions.js';

export interface SearchRequest {
  spacePath: string;
  outDir: string;
  samples: number;
  seed: number;
  settings: TrainSettings;
  maxAttempts: number;
  saveModels?: boolean;
  rounds?: number;
  roundSamples?: number;
  /**
   * Seeds of the uniform reference trained beside the candidates (the CLI and campaign files default to
   * DEFAULT_REFERENCE_SEEDS); absent or 0: none.
   */
  referenceSeeds?: number;
  /** How trials start (default scratch); a given parent path should be absolute. */
  init?: CampaignInit;
  /** Multi-fidelity rungs and finalists (absent: flat). */
  rungs?: RungsPlan;
  measureLatency?: CampaignConfig['measureLatency'];
  /** The space's latency predictor, for a regime with a latency window (built by the caller, which can time). */
  predictLatency?: LatencyPredictor;
  /** What the campaign records of that predictor. */
  latencyModel?: CampaignConfig['latencyModel'];
}

/** Reference seeds a campaign trains unless told otherwise (`search --reference-seeds`, a campaign file's reference.seeds). */
export const DEFAULT_REFERENCE_SEEDS = 3;

export interface PreparedCampaign {
  dir: string;
  /** False when --out already held this very campaign, which then simply continues. */
  created: boolean;
  config: CampaignConfig;
  round?: RoundRecord;
  /** Seconds spent sampling and storing (benchmark: coordinator overhead). */
  setupSeconds: number;
  notes: string[];
}

export { roundSpaceFile };

/** The first field (in the order a user thinks of them) where an existing campaign differs from the request. */
function difference(existing: CampaignConfig, wanted: Omit<CampaignConfig, 'createdAt' | 'versions' | 'backend' | 'name'>): string | null {
  const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);
  if (!same(existing.space, wanted.space)) return `its space (${existing.spacePath}) differs from ${wanted.spacePath}`;
  if (existing.seed !== wanted.seed) return `its seed is ${existing.seed}, not ${wanted.seed}`;
  if (existing.samples !== wanted.samples) return `it has ${existing.samples} samples, not ${wanted.samples}`;
  // A campaign from before reference trials has none.
  const seeds = (c: { reference?: ReferencePlan }) => c.reference?.seeds ?? 0;
  if (seeds(existing) !== seeds(wanted)) return `it has ${seeds(existing)} reference seed(s), not ${seeds(wanted)}`;
  if (!same(existing.rungs ?? null, wanted.rungs ?? null)) return `its rungs are ${JSON.stringify(existing.rungs ?? 'none')}, not ${JSON.stringify(wanted.rungs ?? 'none')}`;
  const init = (c: { init?: CampaignInit }) => c.init ?? { mode: 'scratch' };
  if (!same(init(existing), init(wanted))) return `its init is ${JSON.stringify(init(existing))}, not ${JSON.stringify(init(wanted))}`;
  const { backend: _a, ...a } = existing.settings;
  const { backend: _b, ...b } = wanted.settings;
  for (const key of new Set([...Object.keys(a), ...Object.keys(b)]) as Set<keyof typeof a>) {
    if (!same(a[key], b[key])) return `its training setting ${key} is ${JSON.stringify(a[key])}, not ${JSON.stringify(b[key])}`;
  }
  return null;
}

/**
 * Refuses rungs the budget or the campaign cannot meet, naming the flag and the campaign file's field: every rung must
 * train at least one step more than the one below, and a rung campaign's candidates must train by themselves.
 */
export function checkRungs(plan: RungsPlan, settings: TrainSettings, init: CampaignInit): void {
  const need = (ok: boolean, what: string) => {
    if (!ok) throw new UserError(what);
  };
  need(Number.isInteger(plan.rungs) && plan.rungs >= 1, `--rungs (rungs.rungs) must be an integer >= 1, got ${plan.rungs}`);
  need(Number.isInteger(plan.eta) && plan.eta >= 2, `--eta (rungs.eta) must be an integer >= 2, got ${plan.eta}`);
  need(plan.mode === 'sync' || plan.mode === 'async', `--rung-mode (rungs.mode) must be sync or async, got ${String(plan.mode)}`);
  need(Number.isInteger(plan.finalists) && plan.finalists >= 0, `--finalists (rungs.finalists) must be an integer >= 0, got ${plan.finalists}`);
  need(Number.isInteger(plan.finalistSeeds) && plan.finalistSeeds >= 1, `--finalist-seeds (rungs.finalistSeeds) must be an integer >= 1, got ${plan.finalistSeeds}`);
  if (plan.rungs > 1 && init.mode === 'distill') {
    throw new UserError('--rungs (rungs.rungs) > 1 needs supervised training: a --train distill (train.mode distill) trial cannot continue from a rung checkpoint');
  }
  const { totalSteps } = runLength(settings, trainImageCount(settings.data));
  const stops = rungStopSteps(totalSteps, plan.rungs, plan.eta);
  const short = stops.findIndex((stop, r) => stop <= (r > 0 ? stops[r - 1] : 0));
  if (short >= 0) {
    throw new UserError(
      `--rungs ${plan.rungs} --eta ${plan.eta} (rungs.rungs, rungs.eta): rung ${short} would train no step (the final budget is ${totalSteps} steps, ` +
        `rung stops ${stops.join(', ')}); use fewer rungs, a smaller eta, or more --epochs`,
    );
  }
}

export function prepareCampaign(req: SearchRequest): PreparedCampaign {
  const t0 = performance.now();
  const loaded = loadSpace(req.spacePath);
  const spaceText = readFileSync(req.spacePath, 'utf8');
  const space = JSON.parse(spaceText) as unknown;
  const dir = resolve(req.outDir);
  const referenceSeeds = req.referenceSeeds ?? 0;
  if (!Number.isInteger(referenceSeeds) || referenceSeeds < 0) throw new UserError(`--reference-seeds must be an integer >= 0, got ${referenceSeeds}`);
  const compiled = compileSpace(loaded, { predictLatency: req.predictLatency });
  const init: CampaignInit = req.init ?? { mode: 'scratch' };
  if (req.rungs) checkRungs(req.rungs, req.settings, init);
  checkCampaignInit(init, compiled);
  const top = req.rungs ? req.rungs.rungs - 1 : 0;
  const base = {
    space,
    spacePath: req.spacePath,
    net: loaded.net.ref,
    settings: req.settings,
    samples: req.samples,
    seed: req.seed,
    groups: loaded.net.groups.map((g) => g.name),
    maxAttempts: req.maxAttempts,
    saveModels: req.saveModels ?? false,
    rounds: req.rounds ?? 1,
    ...(req.roundSamples !== undefined ? { roundSamples: req.roundSamples } : {}),
    reference: { seeds: referenceSeeds } as ReferencePlan,
    init,
    ...(req.rungs ? { rungs: req.rungs } : {}),
    // A latency regime is checked on measured latency: every trial is timed.
    ...(req.measureLatency || compiled.latency ? { measureLatency: req.measureLatency ?? 'onnxruntime' } : {}),
    ...(req.latencyModel ? { latencyModel: req.latencyModel } : {}),
  };

  if (isCampaignDir(dir)) {
    const reader = openCampaign(dir, { readonly: true });
    const existing = reader.config();
    reader.close();
    const why = difference(existing, base);
    if (why) throw new UserError(`${req.outDir} holds a different campaign (${why}); choose another --out, or run prunespace resume ${req.outDir}`);
    return { dir, created: false, config: existing, setupSeconds: 0, notes: [`${req.outDir} already holds this campaign; continuing it`] };
  }
  if (existsSync(dir) && (!statSync(dir).isDirectory() || readdirSync(dir).length > 0)) {
    throw new UserError(`--out ${req.outDir} exists and is not a campaign directory; choose a new or empty directory`);
  }

  const { backend, reason } = resolveCampaignBackend(req.settings.backend);
  // Round 0 is sampled with the campaign seed itself, so `prunespace sample SPACE -n N --seed S` lists the same candidates.
  const { sample, trials } = sampleRoundTrials(compiled, { campaignSeed: req.seed, firstIndex: 0, samples: req.samples, sampleSeed: req.seed });
  const notes = [`backend ${reason}`];
  if (sample.shortfall) notes.push(`sampled ${sample.configs.length} of ${req.samples} candidates: ${sample.shortfall}`);
  if (sample.configs.length === 0) throw new UserError(`${req.spacePath}: the sampler found no candidate (${sample.shortfall ?? 'empty space'})`);
  if (req.rungs && req.rungs.finalists > 0) {
    const last = plannedRungSizes(trials.length, req.rungs).at(-1)!;
    if (req.rungs.finalists > last) {
      throw new UserError(`--finalists (rungs.finalists) ${req.rungs.finalists} is more than the ${last} candidate(s) the last rung holds (${trials.length} sampled, eta ${req.rungs.eta}, ${req.rungs.rungs} rung(s))`);
    }
    if (req.rungs.finalistSeeds > referenceSeeds) notes.push(`finalist seed(s) ${referenceSeeds}..${req.rungs.finalistSeeds - 1} have no reference seed to pair with (--reference-seeds ${referenceSeeds})`);
  }

  // The uniform reference: K seeds of one configuration, indexed after the candidates (whose indices and seeds stay
  // those of `prunespace sample`), each seed derived from the campaign seed and its index like any trial's.
  const reference: NewTrial[] = [];
  if (referenceSeeds > 0) {
    const uniform = uniformReference(compiled);
    if ('reason' in uniform) {
      base.reference = { seeds: referenceSeeds, skipped: uniform.reason };
      notes.push(`no uniform reference trial: ${uniform.reason}`);
    } else {
      base.reference = { seeds: referenceSeeds, keep: uniform.keep, widths: uniform.widths, flops: uniform.complexity.flops };
      const predictedLatencyMs = compiled.latency ? compiled.predictLatency?.(uniform.widths) : undefined;
      for (let k = 0; k < referenceSeeds; k++) {
        const index = trials.length + k;
        // Trained at the final budget (the top rung of a rung campaign); seed index k pairs it with each finalist's seed k.
        reference.push({ index, widths: uniform.widths, complexity: uniform.complexity, seed: deriveSeed(req.seed, index), role: 'reference', rung: top, seedIndex: k, ...(predictedLatencyMs !== undefined ? { predictedLatencyMs } : {}) });
      }
      notes.push(
        `plus ${referenceSeeds} uniform reference trial(s) (seeds of one network, trained first): keep ${uniform.keep.toFixed(4)} in every group, ` +
          `FLOPs ${formatCount(uniform.complexity.flops)} (${(100 * uniform.complexity.flops / compiled.original.flops).toFixed(1)}% of the original)`,
      );
    }
  }

  const now = new Date().toISOString();
  const config: CampaignConfig = { ...base, name: basename(dir), createdAt: now, versions: packageVersions(), backend };
  const round: RoundRecord = {
    round: 0,
    spaceFile: roundSpaceFile(0),
    space,
    samples: trials.length,
    sampleSeed: req.seed,
    sampleAttempts: sample.attempts,
    acceptanceRate: sample.acceptanceRate,
    createdAt: now,
  };
  mkdirSync(dir, { recursive: true });
  createCampaignStore(dir, config, round, [...trials, ...reference]).close();
  // A readable copy beside the store (which holds the space too), for refine and for people.
  writeFileSync(join(dir, round.spaceFile), spaceText);
  return { dir, created: true, config, round, setupSeconds: (performance.now() - t0) / 1000, notes };
}

/** Files a new campaign writes into its directory; the only ones `discardNewCampaign` removes. */
const CAMPAIGN_FILES = [PARENT_DIR, PARENT_DRAFT, 'models', 'checkpoints', 'campaign.db', 'campaign.db-wal', 'campaign.db-shm', 'trials.csv', 'trials.jsonl', 'coordinator.lock', roundSpaceFile(0)];

/**
 * Undoes a campaign created moments ago whose very first trial showed the input unusable (missing data files, say),
 * so that the corrected command can reuse --out. Only our own files go, and only while no trial has finished.
 */
export function discardNewCampaign(dir: string): boolean {
  const reader = openCampaign(dir, { readonly: true });
  const { complete, failed } = reader.counts();
  reader.close();
  if (complete + failed > 0) return false;
  for (const f of CAMPAIGN_FILES) rmSync(join(dir, f), { force: true, recursive: true });
  if (readdirSync(dir).length === 0) rmdirSync(dir);
  return true;
}
