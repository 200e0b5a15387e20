/** How the coordinator hands candidates to workers: one interface over worker threads and child processes. */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import type { EpochCurve, TrialRequest, TrialResult } from '../training/types.js';
import type { TrialJob } from './job.js';
import type { CampaignConfig } from './types.js';

/** What one worker trains: a job, and the request it resolves to on the executor's host. */
export interface TrialTask {
  job: TrialJob;
  /** Resolved for local executors; a queue sends the job and the worker host resolves it. */
  request: TrialRequest;
}

export interface TrialOutcome {
  result: TrialResult;
  /** Which worker trained it ('thread-3', 'gpu0-pid1234', 'host-a/thread-2'). */
  worker: string;
  /** runTrial rejected its input (data files, widths, settings): every trial would fail alike. */
  inputError?: boolean;
  /** Stopped through the signal before it finished (Ctrl-C, timeout, lease expiry): the reason. */
  cancelled?: string;
}

export interface TrialHooks {
  onEpoch(curve: EpochCurve): void;
  /** A sign of life from the worker training it (queue executors), with the worker's name. */
  onHeartbeat?(worker: string): void;
}

/**
 * The executor contract. Executors train; they never write the store: the coordinator does, from their outcomes.
 * `run` never rejects (a crashed worker becomes a failed result with the reason). Aborting `signal` stops the trial
 * (the thread or process is ended, the job withdrawn) and resolves with `cancelled` set to the abort reason.
 */
export interface TrialExecutor {
  readonly kind: ExecutorKind;
  /** How many candidates train at once (for a queue: how many jobs the coordinator keeps enqueued). */
  readonly slots: number;
  /** Work survives the coordinator (a queue): after a restart its running trials are handed back, not rerun. */
  readonly durable: boolean;
  run(task: TrialTask, hooks: TrialHooks, signal: AbortSignal): Promise<TrialOutcome>;
  /** Stops every worker; in-flight trials are abandoned. */
  close(): Promise<void>;
  /** The campaign has no work left here (a queue forgets its entry, so workers stop checking for it). */
  retire?(): Promise<void>;
}

export type ExecutorKind = 'thread' | 'process' | 'queue';

/** What a factory gets to build an executor. */
export interface ExecutorOptions {
  workers: number;
  /** One process per entry: a GPU id, or null (CPU). */
  devices?: Array<string | null>;
  trialModule: string;
  maxHeapMb?: number;
  /** Queue executor: the Redis URL and its connection flags. */
  queue?: { url: string; insecure?: boolean };
  /** The campaign (queue executor: job ids and the campaign's entry in Redis). */
  config: CampaignConfig;
  log: (line: string) => void;
}

export type ExecutorFactory = (opts: ExecutorOptions) => Promise<TrialExecutor>;

/** The executor registry: add an entry to add a way of running trials. */
export const executors: Record<ExecutorKind, ExecutorFactory> = {
  thread: async (o) => new (await import('./thread-pool.js')).ThreadPool({ workers: o.workers, trialModule: o.trialModule, maxHeapMb: o.maxHeapMb }),
  process: async (o) => new (await import('./process-pool.js')).ProcessPool({ devices: o.devices ?? new Array<null>(o.workers).fill(null), trialModule: o.trialModule }),
  queue: async (o) => (await import('./queue-executor.js')).QueueExecutor.open(o),
};

/** Engines that are not safe in worker threads (native libraries): their trials run in child processes. */
export { NATIVE_ENGINES as NATIVE_BACKENDS } from '../training/engine-names.js';

/** The abort reason as one line. */
export function abortReason(signal: AbortSignal): string {
  const r = signal.reason as unknown;
  return r instanceof Error ? r.message : String(r ?? 'cancelled');
}

/**
 * A sibling module's URL with this module's own extension, so worker entries resolve under tsx (.ts, tests)
 * and from the compiled dist/ (.js) alike.
 */
export function siblingModule(base: string, relative: string): URL {
  const ext = extname(fileURLToPath(base));
  return new URL(relative + ext, base);
}

/** The module every worker imports `runTrial` from, unless a caller points the pool elsewhere: it routes by init mode. */
export function defaultTrialModule(): string {
  return siblingModule(import.meta.url, './run-trial').href;
}

/** A failed result for a trial whose worker died before it could report one. */
export function crashedResult(reason: string, started: number, backend: string): TrialResult {
  return { status: 'failed', error: reason, curves: [], wallSeconds: (performance.now() - started) / 1000, backend };
}

export type RunTrial = (req: TrialRequest, onEpoch?: (c: EpochCurve) => void) => Promise<TrialResult>;

const loaded = new Map<string, Promise<RunTrial>>();
let tsxRegistered: Promise<void> | null = null;

/**
 * Under tsx (tests, development), Node 20 does not pass `--import tsx` loader hooks to worker threads: piscina still
 * loads the worker entry through tsx's require hook, but a dynamic import of a .ts module needs the hooks registered
 * in the thread itself. Compiled dist/ never takes this path.
 */
function ensureTypeScriptLoader(moduleUrl: string): Promise<void> {
  if (isMainThread || !moduleUrl.endsWith('.ts')) return Promise.resolve();
  tsxRegistered ??= import('tsx/esm/api').then((api) => void api.register());
  return tsxRegistered;
}

/** Imports `runTrial` once per worker from the configured module. */
export function loadRunTrial(moduleUrl: string): Promise<RunTrial> {
  let p = loaded.get(moduleUrl);
  if (!p) {
    p = ensureTypeScriptLoader(moduleUrl).then(() => import(moduleUrl)).then((m: { runTrial?: RunTrial }) => {
      if (typeof m.runTrial !== 'function') throw new Error(`${moduleUrl} exports no runTrial`);
      return m.runTrial;
    });
    loaded.set(moduleUrl, p);
  }
  return p;
}

/**
 * runTrial reports training failures as results and throws only for bad input (UserError) or when it cannot
 * start at all; the worker turns a throw into an outcome so that the error's kind survives the trip home.
 */
export function outcomeOfThrow(e: unknown, worker: string, started: number, backend: string): TrialOutcome {
  const err = e as Error;
  const message = String(err?.message ?? e).split('\n')[0];
  const inputError = err?.name === 'UserError';
  return { result: crashedResult(inputError ? message : `trial could not run: ${message}`, started, backend), worker, inputError };
}
