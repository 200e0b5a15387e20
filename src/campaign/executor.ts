/** How the coordinator hands candidates to workers: one interface over worker threads and child processes. */
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import type { EpochCurve, TrialRequest, TrialResult } from '../training/types.js';

/** What one worker trains: a candidate and the module whose `runTrial` trains it. */
export interface TrialTask {
  index: number;
  request: TrialRequest;
}

export interface TrialOutcome {
  result: TrialResult;
  /** Which worker trained it ('thread-3', 'gpu0-pid1234'). */
  worker: string;
  /** runTrial rejected its input (data files, widths, settings): every trial would fail alike. */
  inputError?: boolean;
}

export interface TrialExecutor {
  /** How many candidates train at once. */
  readonly slots: number;
  /** Never rejects: a crashed worker becomes a failed result carrying the reason. */
  run(task: TrialTask, onEpoch: (curve: EpochCurve) => void): Promise<TrialOutcome>;
  /** Stops every worker; in-flight trials are abandoned. */
  close(): Promise<void>;
}

/**
 * A sibling module's URL with this module's own extension, so worker entries resolve under tsx (.ts, tests)
 * and from the compiled dist/ (.js) alike.
 */
export function siblingModule(base: string, relative: string): URL {
  const ext = extname(fileURLToPath(base));
  return new URL(relative + ext, base);
}

/** The module every worker imports `runTrial` from, unless a caller points the pool elsewhere. */
export function defaultTrialModule(): string {
  return siblingModule(import.meta.url, '../training/trial').href;
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
