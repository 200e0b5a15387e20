/**
 * A trial job: what the coordinator sends an executor, in host-neutral terms. It names a dataset and a model
 * destination instead of paths; each host resolves them against its own directories (`resolveRequest`).
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { z } from 'zod';
import { RANK_ON, type DistillTrialOptions, type RankOn, type TrainSettings, type TrialInit, type TrialRequest } from '../training/types.js';
import type { Attempt } from './store.js';
import type { CampaignConfig, TrialRole } from './types.js';

/**
 * 2: jobs may carry `init`; 3: jobs may carry `rung` (a worker that ignored it would train the whole run, so older
 * workers must refuse). `evalRungs` needs no new version: a worker that ignores it trains the same run and only leaves
 * out the lower rungs' results, which the store then lacks.
 */
export const JOB_VERSION = 3;

/**
 * How a job's weights start, host-neutrally: the parent is named relative to the campaign's run directory (always
 * `parent`), and each host resolves it against its own copy of that directory (`HostDirs.runDir`).
 */
export type JobInit =
  | { mode: 'inherit'; parent: string; criterion: string; kept: number[][] }
  | { mode: 'distill'; parent: string; students: number; options?: DistillTrialOptions; rankOn?: RankOn };

export interface TrialJob {
  v: typeof JOB_VERSION;
  /** Stable id of the campaign (see campaignId). */
  campaign: string;
  /** The campaign's name: the folder its models go into on a worker host. */
  name: string;
  round: number;
  index: number;
  attempt: number;
  /** The attempt token the result must carry back. */
  token: string;
  net: TrialRequest['net'];
  widths: number[];
  seed: number;
  /** Training settings without any host-local data directory. */
  settings: TrainSettings;
  /** Where the trained model goes, relative to the host's models directory; absent when models are not kept. */
  model?: string;
  /** 'reference' for a seed of the uniform reference; absent for a sampled candidate. Trained like any trial. */
  role?: TrialRole;
  /** Absent: the seeded initialisation (scratch). */
  init?: JobInit;
  /** A rung of a multi-fidelity campaign: its checkpoints live in the run directory, under `checkpoints` (relative). */
  rung?: { rung: number; rungs: number; eta: number; checkpoints: string };
  /** A reference seed or finalist of a rung campaign, trained in one go: also report the lower rungs' errors. */
  evalRungs?: { rungs: number; eta: number };
}

/** What a host knows about its own disks. */
export interface HostDirs {
  /** The dataset's directory on this host (default: the loader's own default). */
  dataDir?: string;
  /** Root under which `job.model` is resolved. */
  modelsDir?: string;
  /** This host's copy of the campaign's run directory, under which `job.init.parent` is resolved. */
  runDir?: string;
}

/** A campaign's id: a hash of what never changes about it, so the same campaign gets the same job ids after a restart. */
export function campaignId(config: CampaignConfig): string {
  return createHash('sha256').update(`${config.name}\n${config.createdAt}\n${config.seed}`).digest('hex').slice(0, 12);
}

/** BullMQ job id of one attempt: re-adding the same attempt is a no-op, a new attempt is a new job. */
export function jobId(job: Pick<TrialJob, 'campaign' | 'round' | 'index' | 'attempt'>): string {
  return `${job.campaign}-r${job.round}-t${job.index}-a${job.attempt}`;
}

/** Where a trial's rung checkpoints live, relative to the run directory. */
export function checkpointsDir(index: number): string {
  return `checkpoints/trial-${index}`;
}

/** Whether a trial trains in rung segments: a candidate of a campaign with more than one rung. */
export function trainsInRungs(config: CampaignConfig, trial: { role?: TrialRole }): boolean {
  return (config.rungs?.rungs ?? 1) > 1 && (trial.role ?? 'sample') === 'sample';
}

/** Whether a trial trains in one go but reports every rung: a reference seed or finalist of a campaign with more than one rung. */
export function evaluatesRungs(config: CampaignConfig, trial: { role?: TrialRole }): boolean {
  return (config.rungs?.rungs ?? 1) > 1 && (trial.role ?? 'sample') !== 'sample';
}

export function makeJob(config: CampaignConfig, trial: { index: number; widths: number[]; seed: number; role?: TrialRole; rung?: number }, a: Attempt, init?: JobInit): TrialJob {
  const { dir: _hostLocal, ...data } = config.settings.data;
  const settings = { ...config.settings, data, backend: config.backend as TrainSettings['backend'] };
  return {
    v: JOB_VERSION,
    campaign: campaignId(config),
    name: config.name,
    round: a.round,
    index: trial.index,
    attempt: a.attempt,
    token: a.token,
    net: config.net,
    widths: trial.widths,
    seed: trial.seed,
    settings,
    ...(config.saveModels ? { model: `trial-${trial.index}` } : {}),
    ...(trial.role && trial.role !== 'sample' ? { role: trial.role } : {}),
    ...(init ? { init } : {}),
    ...(trainsInRungs(config, trial)
      ? { rung: { rung: trial.rung ?? 0, rungs: config.rungs!.rungs, eta: config.rungs!.eta, checkpoints: checkpointsDir(trial.index) } }
      : {}),
    ...(evaluatesRungs(config, trial) ? { evalRungs: { rungs: config.rungs!.rungs, eta: config.rungs!.eta } } : {}),
  };
}

/** The training request on this host: the dataset directory and model destination resolved locally. */
export function resolveRequest(job: TrialJob, host: HostDirs): TrialRequest {
  const data = host.dataDir !== undefined && job.settings.data.name !== 'synthetic' ? { ...job.settings.data, dir: host.dataDir } : job.settings.data;
  return {
    net: job.net,
    widths: job.widths,
    settings: { ...job.settings, data },
    seed: job.seed,
    saveDir: job.model !== undefined && host.modelsDir !== undefined ? join(host.modelsDir, job.model) : undefined,
    ...(job.init ? { init: resolveInit(job.init, host) } : {}),
    ...(job.rung ? { rung: { ...job.rung, checkpoints: inRunDir(job.rung.checkpoints, host, 'a rung') } } : {}),
    ...(job.evalRungs ? { evalRungs: job.evalRungs } : {}),
  };
}

function inRunDir(path: string, host: HostDirs, what: string): string {
  if (host.runDir === undefined) throw new Error(`trial job with ${what}, but this host has no run directory to find it in`);
  return join(host.runDir, path);
}

function resolveInit(init: JobInit, host: HostDirs): TrialInit {
  return { ...init, parent: inRunDir(init.parent, host, `a ${init.mode} init's parent`) };
}

/** A path inside the run directory: relative, no '..', no empty parts. */
const insideRun = z.string().regex(/^(?!\.\.?(\/|$))[\w.-]+(\/(?!\.\.?(\/|$))[\w.-]+)*$/, 'a path relative to the run directory, without ..');

const initSchema = z.discriminatedUnion('mode', [
  z.object({ mode: z.literal('inherit'), parent: insideRun, criterion: z.string().min(1), kept: z.array(z.array(z.number().int().min(0)).min(1)) }).strict(),
  z.object({
    mode: z.literal('distill'),
    parent: insideRun,
    students: z.number().int().min(1),
    options: z.object({
      lambdaLogits: z.number().min(0).optional(),
      lambdaFeatures: z.number().min(0).optional(),
      lambdaMutual: z.number().min(0).optional(),
      lambdaSparsity: z.union([z.number().min(0), z.literal('auto')]).optional(),
      temperature: z.number().gt(0).optional(),
      reselectEvery: z.number().int().min(1).optional(),
      sensitivityBatches: z.number().int().min(1).optional(),
      bnBatches: z.number().int().min(1).optional(),
    }).strict().optional(),
    rankOn: z.enum(RANK_ON as [RankOn, ...RankOn[]]).optional(),
  }).strict(),
]);

const jobSchema = z.object({
  v: z.literal(JOB_VERSION),
  campaign: z.string().regex(/^[0-9a-f]{12}$/),
  name: z.string().min(1).regex(/^[^/\\]+$/, 'a plain folder name'),
  round: z.number().int().min(0),
  index: z.number().int().min(0),
  attempt: z.number().int().min(1),
  token: z.string().min(1),
  net: z.object({ family: z.string() }).passthrough(),
  widths: z.array(z.number()),
  seed: z.number().int(),
  settings: z.object({ data: z.object({ name: z.string() }).passthrough(), backend: z.string(), epochs: z.number() }).passthrough(),
  model: z.string().regex(/^[\w.-]+$/, 'a plain folder name').optional(),
  role: z.enum(['sample', 'reference', 'finalist']).optional(),
  init: initSchema.optional(),
  rung: z.object({ rung: z.number().int().min(0), rungs: z.number().int().min(2), eta: z.number().int().min(2), checkpoints: insideRun }).strict().optional(),
  evalRungs: z.object({ rungs: z.number().int().min(2), eta: z.number().int().min(2) }).strict().optional(),
}).superRefine((job, ctx) => {
  // Kept indices must give exactly the job's widths, group by group.
  if (job.init?.mode !== 'inherit') return;
  const kept = job.init.kept;
  if (kept.length !== job.widths.length) ctx.addIssue({ code: 'custom', path: ['init', 'kept'], message: `${kept.length} groups of kept indices for ${job.widths.length} widths` });
  else kept.forEach((k, g) => {
    if (k.length !== job.widths[g]) ctx.addIssue({ code: 'custom', path: ['init', 'kept', g], message: `keeps ${k.length} channels, the width is ${job.widths[g]}` });
  });
});

/** Validates a payload from the queue; the error names the first field that is wrong. */
export function parseJob(payload: unknown): TrialJob {
  const r = jobSchema.safeParse(payload);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`not a prunespace trial job (${issue.path.join('.') || 'payload'}: ${issue.message})`);
  }
  return r.data as unknown as TrialJob;
}
