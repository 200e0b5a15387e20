/**
 * Campaign files (`search --config FILE`): one JSON file says what to sample, how to train, how to launch, how many
 * rounds and how to analyse. It becomes the same options object the flags give (flags typed on the command line win),
 * the effective campaign is stored as campaign.json in the run directory, and a later `search` into that directory is
 * compared with it, one line per difference.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, dirname, join, relative, resolve } from 'node:path';
import type { Command } from 'commander';
import { z } from 'zod';
import { REFINE_RULES, type RefineRule } from '../analysis/refine.js';
import { DEFAULT_REFERENCE_SEEDS } from '../campaign/create.js';
import type { CampaignInit, RungsPlan } from '../campaign/types.js';
import { checkCriterion, COMBINES, criterionNames, type Combine } from '../pruning/importance.js';
import { RANK_ON, type DistillTrialOptions, type RankOn } from '../training/types.js';
import { describeIssue, parseSpace } from '../space/load.js';
import { spaceSchema } from '../space/schema.js';
import { DATASETS } from '../training/data/load.js';
import { UserError } from '../util/errors.js';
import { DEFAULT_PRECISE_BN } from '../training/bn-stats.js';
import type { TrainingFlags } from './training-flags.js';
import { ENGINE_CHOICES } from '../training/engine-names.js';

/** Reduction factor of a rung campaign unless told otherwise (Hyperband's and ASHA's usual 3). */
export const DEFAULT_ETA = 3;

/** The run directory's copy of the effective campaign. */
export const CAMPAIGN_JSON = 'campaign.json';

const int = (min: number) => z.number().int().min(min);
const fraction = (max: number) => z.number().gt(0).max(max);

export const campaignSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9._-]+$/, 'expected letters, digits, ".", "_" or "-" (it names runs/NAME)'),
    description: z.string().optional(),
    /** A space file (relative to this file) or the space itself. */
    space: z.union([z.string().min(1), z.record(z.string(), z.unknown())]),
    samples: int(1),
    seed: int(0).default(0),
    train: z
      .object({
        data: z.enum(DATASETS),
        dataDir: z.string().min(1).optional(),
        subset: fraction(1).optional(),
        valFraction: fraction(0.9).optional(),
        testSubset: fraction(1).optional(),
        syntheticSamples: int(2).optional(),
        augment: z.boolean().default(true),
        epochs: int(1),
        steps: int(1).optional(),
        batch: int(1).default(128),
        lr: z.number().gt(0).default(0.1),
        momentum: z.number().min(0).max(0.999).default(0.9),
        nesterov: z.boolean().default(false),
        weightDecay: z.number().min(0).default(5e-4),
        warmup: z.number().min(0).default(0),
        labelSmoothing: z.number().min(0).max(0.99).default(0),
        preciseBn: int(0).default(DEFAULT_PRECISE_BN),
        /** supervised: trained with labels from the trial's init; distill: the parent distilled to the widths, no labels. */
        mode: z.enum(['supervised', 'distill']).default('supervised'),
        students: int(1).optional(),
        /** distill: what valError holds and the population ranks on, and distill's settings under its flag names. */
        rankOn: z.enum(RANK_ON as [RankOn, ...RankOn[]]).optional(),
        lambdaLogits: z.number().min(0).optional(),
        lambdaFeatures: z.number().min(0).optional(),
        lambdaMutual: z.number().min(0).optional(),
        lambdaSparsity: z.union([z.number().min(0), z.literal('auto')]).optional(),
        temperature: z.number().gt(0).optional(),
        reselectEvery: int(1).optional(),
        sensitivityBatches: int(1).optional(),
        bnBatches: int(1).optional(),
      })
      .strict(),
    /** How trials start; a parent path is relative to this file. */
    init: z
      .object({
        mode: z.enum(['scratch', 'inherit']).default('scratch'),
        parent: z.string().min(1).optional(),
        criterion: z.enum(criterionNames() as [string, ...string[]]).optional(),
        combine: z.enum(COMBINES as [Combine, ...Combine[]]).optional(),
        parentEpochs: int(1).optional(),
        /** How the parent is scored, as prune's flags. */
        scoreBatches: int(1).optional(),
        temperature: z.number().gt(0).optional(),
        bnTrain: z.boolean().optional(),
      })
      .strict()
      .optional(),
    launch: z
      .object({
        backend: z.enum(ENGINE_CHOICES).default('auto'),
        workers: int(1).optional(),
        gpus: z.array(z.string().regex(/^\d+$/, 'expected a GPU id such as "0"')).nonempty().optional(),
        maxAttempts: int(1).default(2),
        saveModels: z.boolean().default(false),
        /** As --measure-latency: time each completed trial's batch-1 inference on this target. */
        measureLatency: z.enum(['onnxruntime']).optional(),
        /** As --latency-table: the latency table a regime.latency space samples against (relative to this file). */
        latencyTable: z.string().min(1, 'expected a table file path').optional(),
      })
      .strict()
      .default({ backend: 'auto', maxAttempts: 2, saveModels: false }),
    rounds: z.object({ count: int(1), samples: int(1).optional() }).strict().default({ count: 1 }),
    /** The uniform reference trained beside the candidates: `seeds` 0 trains none. */
    reference: z.object({ seeds: int(0).default(DEFAULT_REFERENCE_SEEDS) }).strict().default({ seeds: DEFAULT_REFERENCE_SEEDS }),
    analysis: z.object({ rules: z.array(z.enum(REFINE_RULES)).nonempty().optional() }).strict().default({}),
    /** Successive halving: rungs (1: flat), eta, sync or async promotion, and the finalists re-seeded at the final budget. */
    rungs: z
      .object({
        rungs: int(1).default(1),
        eta: int(2).default(DEFAULT_ETA),
        mode: z.enum(['sync', 'async']).default('sync'),
        finalists: int(0).default(0),
        finalistSeeds: int(1).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type CampaignFile = z.output<typeof campaignSchema>;

/** The options `search` runs with: exactly the keys its flags produce, plus the refinement rules of a campaign file. */
export interface SearchOptions extends Omit<TrainingFlags, 'epochs'>, DistillTrialOptions {
  samples: number;
  seed: number;
  out: string;
  maxAttempts: number;
  saveModels: boolean;
  rounds: number;
  roundSamples?: number;
  /** Seeds of the uniform reference (0: none; --no-reference sets 0). */
  referenceSeeds: number;
  /** Required here: a campaign always has an epoch bound (the file or the flag gives one). */
  epochs: number;
  workers?: number;
  gpus?: string[];
  executor?: 'thread' | 'process';
  rules?: RefineRule[];
  /** Init flags (see campaignInit for how they combine). */
  init?: 'scratch' | 'inherit';
  parent?: string;
  criterion?: string;
  combine?: Combine;
  parentEpochs?: number;
  train?: 'supervised' | 'distill';
  students?: number;
  /** --train distill: what trials rank on (distill's settings come from DistillTrialOptions; `temperature` is also inherit's scoring T). */
  rankOn?: RankOn;
  /** --init inherit: how the parent is scored. */
  scoreBatches?: number;
  bnTrain?: boolean;
  /** Rungs flags (see rungsPlan). */
  rungs?: number;
  eta?: number;
  rungMode?: 'sync' | 'async';
  finalists?: number;
  finalistSeeds?: number;
  /** Measure each completed trial's latency on this target (campaign files: launch.measureLatency). */
  measureLatency?: 'onnxruntime';
  /** regime.latency: the latency table file (`--latency-table`; default the cache file). */
  latencyTable?: string;
}

/** The campaign's rungs plan from the rungs flags (or a campaign file's rungs section); absent for a flat campaign without finalists. */
export function rungsPlan(o: Pick<SearchOptions, 'rungs' | 'eta' | 'rungMode' | 'finalists' | 'finalistSeeds' | 'referenceSeeds'>): RungsPlan | undefined {
  const rungs = o.rungs ?? 1;
  const finalists = o.finalists ?? 0;
  if (rungs <= 1 && finalists === 0) {
    for (const [flag, v] of [['--eta (rungs.eta)', o.eta], ['--rung-mode (rungs.mode)', o.rungMode], ['--finalist-seeds (rungs.finalistSeeds)', o.finalistSeeds]] as const) {
      if (v !== undefined) throw new UserError(`${flag} applies to a campaign with --rungs above 1 or --finalists`);
    }
    return undefined;
  }
  return {
    rungs,
    eta: o.eta ?? DEFAULT_ETA,
    mode: o.rungMode ?? 'sync',
    finalists,
    // Seed for seed with the reference by default.
    finalistSeeds: o.finalistSeeds ?? (o.referenceSeeds > 0 ? o.referenceSeeds : DEFAULT_REFERENCE_SEEDS),
  };
}

/** The search options that are distill's settings, with the flag each comes from. */
const DISTILL_OPTIONS: [keyof DistillTrialOptions & keyof SearchOptions, string][] = [
  ['lambdaLogits', '--lambda-logits'], ['lambdaFeatures', '--lambda-features'], ['lambdaMutual', '--lambda-mutual'],
  ['lambdaSparsity', '--lambda-sparsity'], ['reselectEvery', '--reselect-every'], ['sensitivityBatches', '--sensitivity-batches'],
  ['bnBatches', '--bn-batches'],
];

/** The default importance measure of --init inherit: the L1 filter norm (Li et al. 2017). */
export const DEFAULT_CRITERION = 'l1';

/**
 * The campaign's init from the init flags (or a campaign file's init section and train.mode), with every
 * combination that makes no sense refused in one line. A parent path becomes absolute.
 */
export function campaignInit(o: Partial<SearchOptions>): CampaignInit {
  const inherit = o.init === 'inherit';
  const distill = o.train === 'distill';
  for (const [key, flag] of DISTILL_OPTIONS) if (o[key] !== undefined && !distill) throw new UserError(`${flag} (train.${key}) applies to --train distill only`);
  if (o.rankOn !== undefined && !distill) throw new UserError('--rank-on (train.rankOn) applies to --train distill only');
  if (o.scoreBatches !== undefined && !inherit) throw new UserError('--score-batches (init.scoreBatches) applies to --init inherit only');
  if (o.bnTrain && !inherit) throw new UserError('--bn-train (init.bnTrain) applies to --init inherit only');
  if (o.temperature !== undefined && !inherit && !distill) throw new UserError('--temperature applies to --init inherit (scoring) or --train distill (the logit terms) only');
  if (o.temperature !== undefined && !(o.temperature > 0)) throw new UserError(`--temperature must be > 0, got ${o.temperature}`);
  if (o.criterion !== undefined && !inherit) throw new UserError('--criterion (init.criterion) applies to --init inherit only');
  if (o.criterion !== undefined) checkCriterion(o.criterion);
  if (o.combine !== undefined && !inherit) throw new UserError('--combine (init.combine) applies to --init inherit only');
  if (o.students !== undefined && !distill) throw new UserError('--students (train.students) applies to --train distill only');
  if (o.parentEpochs !== undefined && (!inherit || o.parent !== undefined)) {
    throw new UserError('--parent-epochs (init.parentEpochs) applies to --init inherit without --parent (the parent the campaign trains itself)');
  }
  if (distill) {
    if (inherit) throw new UserError('--train distill starts every trial from the parent itself; leave out --init inherit');
    if (o.parent === undefined) throw new UserError('--train distill needs --parent DIR (init.parent): the trained network to distil');
    if (o.students !== undefined && !(Number.isInteger(o.students) && o.students >= 1)) throw new UserError(`--students expects an integer >= 1, got ${o.students}`);
    const options: DistillTrialOptions = {};
    for (const [key] of DISTILL_OPTIONS) if (o[key] !== undefined) (options as Record<string, unknown>)[key] = o[key];
    if (o.temperature !== undefined) options.temperature = o.temperature;
    return {
      mode: 'distill', parent: resolve(o.parent), students: o.students ?? 2,
      ...(Object.keys(options).length ? { options } : {}),
      rankOn: o.rankOn ?? 'agreement',
    };
  }
  if (inherit) {
    const scoring = {
      ...(o.scoreBatches !== undefined ? { scoreBatches: o.scoreBatches } : {}),
      ...(o.temperature !== undefined ? { temperature: o.temperature } : {}),
      ...(o.bnTrain ? { bnTrain: true } : {}),
    };
    return {
      mode: 'inherit',
      ...(o.parent !== undefined ? { parent: resolve(o.parent) } : {}),
      ...(o.parentEpochs !== undefined ? { parentEpochs: o.parentEpochs } : {}),
      criterion: o.criterion ?? DEFAULT_CRITERION,
      combine: o.combine ?? 'sum',
      ...(Object.keys(scoring).length ? { scoring } : {}),
    };
  }
  if (o.parent !== undefined) throw new UserError('--parent (init.parent) needs --init inherit or --train distill');
  return { mode: 'scratch' };
}

/** What a campaign is, in one normalised form for campaign.json and for comparing a request with a stored campaign. */
export interface StoredCampaign {
  name: string;
  description?: string;
  /** Where the space came from (informational); `space` is its content. */
  spaceSource: string;
  space: unknown;
  samples: number;
  seed: number;
  train: Record<string, unknown>;
  launch: { backend: string; maxAttempts: number; saveModels: boolean; workers?: number; gpus?: string[]; measureLatency?: 'onnxruntime'; latencyTable?: string };
  rounds: { count: number; samples?: number };
  /** Absent in campaign.json files written before reference trials: none. */
  reference?: { seeds: number };
  analysis: { rules?: string[] };
  /** Absent for scratch campaigns (as in campaign files written before init modes). */
  init?: Record<string, unknown>;
  /** Absent for flat campaigns (as in campaign files written before rungs). */
  rungs?: RungsPlan;
}

function readJson(path: string): unknown {
  if (!existsSync(path)) throw new UserError(`campaign file ${path} does not exist`);
  try {
    return JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new UserError(`${path}: not valid JSON (${(e as Error).message})`);
  }
}

export interface LoadedCampaignFile {
  path: string;
  file: CampaignFile;
  /** The space file to sample (an inline space is written to a temporary file). */
  spacePath: string;
  spaceSource: string;
  space: unknown;
}

/** Reads and validates a campaign file; every problem is one line naming the file and the JSON path. */
export function loadCampaignFile(path: string): LoadedCampaignFile {
  const parsed = campaignSchema.safeParse(readJson(path));
  if (!parsed.success) throw new UserError(`${path}: ${describeIssue(parsed.error.issues[0])}`);
  const file = parsed.data;
  const here = dirname(resolve(path));
  if (file.train.dataDir !== undefined) file.train.dataDir = resolve(here, file.train.dataDir);
  if (file.init?.parent !== undefined) file.init.parent = resolve(here, file.init.parent);
  if (file.launch.latencyTable !== undefined) file.launch.latencyTable = resolve(here, file.launch.latencyTable);
  if (typeof file.space === 'string') {
    const spacePath = resolve(here, file.space);
    if (!existsSync(spacePath)) throw new UserError(`${path}: space: space file ${file.space} does not exist (paths are relative to the campaign file)`);
    let space: unknown;
    try {
      space = JSON.parse(readFileSync(spacePath, 'utf8'));
    } catch (e) {
      throw new UserError(`${spacePath}: not valid JSON (${(e as Error).message})`);
    }
    return { path, file, spacePath, spaceSource: relative(process.cwd(), spacePath), space };
  }
  const inline = spaceSchema.safeParse(file.space);
  if (!inline.success) {
    const issue = inline.error.issues[0];
    throw new UserError(`${path}: ${describeIssue({ ...issue, path: ['space', ...issue.path] } as typeof issue)}`);
  }
  parseSpace(file.space, `${path}: space`);
  // prepareCampaign samples from a file; the run directory keeps its own copy (space-r0.json) afterwards.
  const spacePath = join(mkdtempSync(join(tmpdir(), 'prunespace-space-')), `${file.name}.space.json`);
  writeFileSync(spacePath, JSON.stringify(file.space, null, 2) + '\n');
  return { path, file, spacePath, spaceSource: `${path} (inline)`, space: file.space };
}

/** The flag values a campaign file stands for. */
function fileOptions(c: CampaignFile): Omit<SearchOptions, 'out'> {
  const t = c.train;
  if (t.temperature !== undefined && t.mode !== 'distill') throw new UserError("train.temperature applies to train.mode distill only (init.temperature is the parent scoring's)");
  return {
    samples: c.samples,
    seed: c.seed,
    maxAttempts: c.launch.maxAttempts,
    saveModels: c.launch.saveModels,
    rounds: c.rounds.count,
    ...(c.rounds.samples !== undefined ? { roundSamples: c.rounds.samples } : {}),
    referenceSeeds: c.reference.seeds,
    data: t.data,
    ...(t.dataDir !== undefined ? { dataDir: t.dataDir } : {}),
    ...(t.subset !== undefined ? { subset: t.subset } : {}),
    ...(t.valFraction !== undefined ? { valFraction: t.valFraction } : {}),
    ...(t.testSubset !== undefined ? { testSubset: t.testSubset } : {}),
    ...(t.syntheticSamples !== undefined ? { syntheticSamples: t.syntheticSamples } : {}),
    augment: t.augment,
    epochs: t.epochs,
    ...(t.steps !== undefined ? { steps: t.steps } : {}),
    batch: t.batch,
    lr: t.lr,
    momentum: t.momentum,
    nesterov: t.nesterov,
    weightDecay: t.weightDecay,
    warmup: t.warmup,
    labelSmoothing: t.labelSmoothing,
    preciseBn: t.preciseBn,
    backend: c.launch.backend,
    ...(c.launch.workers !== undefined ? { workers: c.launch.workers } : {}),
    ...(c.launch.gpus !== undefined ? { gpus: c.launch.gpus } : {}),
    ...(c.launch.measureLatency !== undefined ? { measureLatency: c.launch.measureLatency } : {}),
    ...(c.launch.latencyTable !== undefined ? { latencyTable: c.launch.latencyTable } : {}),
    ...(c.analysis.rules !== undefined ? { rules: c.analysis.rules } : {}),
    ...(c.init !== undefined ? { init: c.init.mode } : {}),
    ...(c.init?.parent !== undefined ? { parent: c.init.parent } : {}),
    ...(c.init?.criterion !== undefined ? { criterion: c.init.criterion } : {}),
    ...(c.init?.combine !== undefined ? { combine: c.init.combine } : {}),
    ...(c.init?.parentEpochs !== undefined ? { parentEpochs: c.init.parentEpochs } : {}),
    ...(t.mode !== 'supervised' ? { train: t.mode } : {}),
    ...(t.students !== undefined ? { students: t.students } : {}),
    ...(t.rankOn !== undefined ? { rankOn: t.rankOn } : {}),
    ...Object.fromEntries(DISTILL_OPTIONS.filter(([k]) => t[k] !== undefined).map(([k]) => [k, t[k]])),
    ...(t.temperature !== undefined ? { temperature: t.temperature } : {}),
    ...(c.init?.scoreBatches !== undefined ? { scoreBatches: c.init.scoreBatches } : {}),
    ...(c.init?.temperature !== undefined ? { temperature: c.init.temperature } : {}),
    ...(c.init?.bnTrain !== undefined ? { bnTrain: c.init.bnTrain } : {}),
    ...(c.rungs !== undefined
      ? {
          rungs: c.rungs.rungs, eta: c.rungs.eta, rungMode: c.rungs.mode, finalists: c.rungs.finalists,
          ...(c.rungs.finalistSeeds !== undefined ? { finalistSeeds: c.rungs.finalistSeeds } : {}),
        }
      : {}),
  };
}

/** Flags `search` cannot run without, and where each may come from. */
const REQUIRED: [keyof SearchOptions, string][] = [
  ['samples', '--samples (or "samples" in a campaign file)'],
  ['data', '--data (or "train.data" in a campaign file)'],
  ['epochs', '--epochs (or "train.epochs" in a campaign file)'],
  ['out', '--out (a campaign file defaults it to runs/<name>)'],
];

export interface ResolvedSearch {
  spacePath: string;
  options: SearchOptions;
  campaign: StoredCampaign;
}

/**
 * Merges a campaign file (if any) with the flags: a flag typed on the command line overrides the file, the file
 * overrides the flags' defaults. Without --config the flags alone give the same options object.
 */
export function resolveSearch(spaceArg: string | undefined, flags: Record<string, unknown>, cmd: Command): ResolvedSearch {
  const configPath = flags.config as string | undefined;
  if (configPath !== undefined && spaceArg !== undefined) {
    throw new UserError(`give the space either as an argument or in the campaign file ${configPath}, not both`);
  }
  const loaded = configPath !== undefined ? loadCampaignFile(configPath) : undefined;
  const merged: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(flags)) if (key !== 'config') merged[key] = value;
  if (loaded) {
    for (const [key, value] of Object.entries(fileOptions(loaded.file))) {
      if (cmd.getOptionValueSource(key) !== 'cli') merged[key] = value;
    }
    if (cmd.getOptionValueSource('out') !== 'cli') merged.out = join('runs', loaded.file.name);
  }
  // --no-reference (commander's `reference: false`) is --reference-seeds 0; both at once contradict each other.
  if (merged.reference === false) {
    if (cmd.getOptionValueSource('referenceSeeds') === 'cli' && merged.referenceSeeds !== 0) {
      throw new UserError(`give either --no-reference or --reference-seeds ${String(merged.referenceSeeds)}, not both`);
    }
    merged.referenceSeeds = 0;
  }
  delete merged.reference;
  const spacePath = loaded?.spacePath ?? spaceArg;
  if (spacePath === undefined) throw new UserError('search needs a space file argument or --config CAMPAIGN_FILE');
  for (const [key, what] of REQUIRED) if (merged[key] === undefined) throw new UserError(`search needs ${what}`);
  const options = merged as unknown as SearchOptions;
  return { spacePath, options, campaign: describeCampaign(options, loaded, spacePath) };
}

/** The normalised campaign of a resolved request: what campaign.json stores and what a later request is compared with. */
function describeCampaign(o: SearchOptions, loaded: LoadedCampaignFile | undefined, spacePath: string): StoredCampaign {
  let space: unknown = loaded?.space;
  if (space === undefined) {
    try {
      space = JSON.parse(readFileSync(spacePath, 'utf8'));
    } catch {
      space = null; // prepareCampaign reports an unreadable space file with its own one-line error
    }
  }
  const drop = <T extends Record<string, unknown>>(x: T): T => Object.fromEntries(Object.entries(x).filter(([, v]) => v !== undefined)) as T;
  return drop({
    name: loaded?.file.name ?? basename(resolve(o.out)),
    description: loaded?.file.description,
    spaceSource: loaded?.spaceSource ?? spacePath,
    space,
    samples: o.samples,
    seed: o.seed,
    train: drop({
      data: o.data, dataDir: o.dataDir, subset: o.subset, valFraction: o.valFraction, testSubset: o.testSubset, syntheticSamples: o.syntheticSamples,
      augment: o.augment, epochs: o.epochs, steps: o.steps, batch: o.batch, lr: o.lr, momentum: o.momentum,
      nesterov: o.nesterov, weightDecay: o.weightDecay, warmup: o.warmup, labelSmoothing: o.labelSmoothing,
      preciseBn: o.preciseBn,
    }),
    launch: drop({ backend: o.backend, maxAttempts: o.maxAttempts, saveModels: o.saveModels, workers: o.workers, gpus: o.gpus, measureLatency: o.measureLatency,
      latencyTable: o.latencyTable !== undefined ? resolve(o.latencyTable) : undefined }),
    rounds: drop({ count: o.rounds, samples: o.roundSamples }),
    reference: { seeds: o.referenceSeeds ?? 0 },
    analysis: drop({ rules: o.rules }),
    init: storedInit(o),
    rungs: storedRungs(o),
  });
}

function storedRungs(o: SearchOptions): RungsPlan | undefined {
  try {
    return rungsPlan(o);
  } catch {
    return undefined; // the search command reports bad rungs flags with their own one-line error
  }
}

/** The init as campaign.json keeps it: the campaign's normalised init (defaults filled in), absent for scratch. */
function storedInit(o: SearchOptions): Record<string, unknown> | undefined {
  let init: CampaignInit;
  try {
    init = campaignInit(o);
  } catch {
    return undefined; // the search command reports bad init flags with their own one-line error
  }
  return init.mode === 'scratch' ? undefined : { ...init };
}

/** Fields that name or launch a campaign without changing what it is; they may differ between sessions. */
// The latency table only steers sampling, which a stored campaign has done: another path to it is the same campaign.
const SESSION_FIELDS = new Set(['name', 'description', 'spaceSource', 'launch.workers', 'launch.gpus', 'launch.latencyTable']);

/** One line per field where the requested campaign differs from the stored one, as `path: stored X, requested Y`. */
export function diffCampaigns(stored: unknown, requested: unknown, path = ''): string[] {
  if (SESSION_FIELDS.has(path)) return [];
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  if (isObject(stored) && isObject(requested)) {
    const keys = [...new Set([...Object.keys(stored), ...Object.keys(requested)])];
    return keys.flatMap((k) => diffCampaigns(stored[k], requested[k], path ? `${path}.${k}` : k));
  }
  if (JSON.stringify(stored) === JSON.stringify(requested)) return [];
  const show = (x: unknown) => (x === undefined ? '(not set)' : JSON.stringify(x));
  return [`${path}: stored ${show(stored)}, requested ${show(requested)}`];
}

/** The campaign stored in a run directory, if it has one. */
export function storedCampaign(dir: string): StoredCampaign | undefined {
  const path = join(dir, CAMPAIGN_JSON);
  if (!existsSync(path)) return undefined;
  return JSON.parse(readFileSync(path, 'utf8')) as StoredCampaign;
}

export function storeCampaign(dir: string, campaign: StoredCampaign): void {
  writeFileSync(join(dir, CAMPAIGN_JSON), JSON.stringify(campaign, null, 2) + '\n');
}

/** Removes campaign.json of a campaign just discarded (and the directory when nothing else is left in it). */
export function discardStoredCampaign(dir: string): void {
  rmSync(join(dir, CAMPAIGN_JSON), { force: true });
  if (existsSync(dir) && readdirSync(dir).length === 0) rmdirSync(dir);
}

/**
 * A request into a directory that already holds a campaign must be that campaign: otherwise print one line per
 * difference and stop, pointing at `resume` (which continues the stored campaign) and at a new --out.
 */
export function checkAgainstStored(out: string, requested: StoredCampaign, write: (line: string) => void): void {
  const stored = storedCampaign(resolve(out));
  if (!stored) return;
  // A campaign stored before reference trials existed has none.
  const lines = diffCampaigns({ ...stored, reference: stored.reference ?? { seeds: 0 } }, requested);
  if (!lines.length) return;
  for (const line of lines) write(`prunespace: ${out}/${CAMPAIGN_JSON}: ${line}`);
  throw new UserError(
    `${out} holds a different campaign (${lines.length} difference(s) above); continue the stored one with prunespace resume ${out}, or choose another --out`,
  );
}
