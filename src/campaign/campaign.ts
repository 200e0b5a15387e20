/** The campaign coordinator: hands runnable trials to a worker pool and records every outcome in the store. */
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import type { EpochCurve, TrialRequest } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { defaultTrialModule, type TrialExecutor, type TrialOutcome } from './executor.js';
import { exportTrials } from './export.js';
import { CampaignLock } from './lock.js';
import { ProcessPool } from './process-pool.js';
import { CampaignProgress, type ProgressOptions } from './progress.js';
import { openCampaign, type CampaignStore, type StateCounts } from './store.js';
import { ThreadPool } from './thread-pool.js';
import type { CampaignConfig, TrialRecord } from './types.js';

export interface RunOptions {
  /** Worker threads (wasm, cpu) or stand-in processes; default one per core. */
  workers?: number;
  /** GPU ids for native TensorFlow, one child process each. */
  gpus?: string[];
  /** 'thread' (piscina) or 'process' (child processes); default: process for tensorflow and torch on GPUs, thread otherwise. */
  executor?: 'thread' | 'process';
  /** Overrides the campaign's stored retry budget. */
  maxAttempts?: number;
  /** Module whose `runTrial` trains a candidate; default src/training/trial. */
  trialModule?: string;
  /** Heap cap per worker thread in MB. */
  maxHeapMb?: number;
  progress?: ProgressOptions;
  /** Install Ctrl-C handling (CLI): first stops cleanly, second exits at once. */
  handleSignals?: boolean;
  /** Minimum time between rewrites of trials.csv/jsonl while trials finish. */
  exportEveryMs?: number;
}

export interface RunSummary {
  dir: string;
  counts: StateCounts;
  /** Stopped by Ctrl-C before every runnable trial ran. */
  interrupted: boolean;
  csv: string;
  jsonl: string;
  wallSeconds: number;
  /** Sum of the trained trials' own wall times. */
  trialSeconds: number;
  trialsRun: number;
  slots: number;
  /** Time the coordinator spent storing, exporting and scheduling (excluding waits on workers). */
  coordinatorSeconds: number;
}

function makeExecutor(config: CampaignConfig, opts: RunOptions, runnable: number): TrialExecutor {
  const trialModule = opts.trialModule ?? defaultTrialModule();
  // The torch addon is safe in worker threads (tested with concurrent trials); on GPUs it gets one process per GPU.
  const perGpuProcess = config.backend === 'tensorflow' || (config.backend === 'torch' && !!opts.gpus?.length);
  const kind = opts.executor ?? (perGpuProcess ? 'process' : 'thread');
  // Never start more workers than there are trials to run: each one loads a backend and the data.
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), runnable));
  if (kind === 'process') {
    const devices = opts.gpus?.length ? opts.gpus : config.backend === 'tensorflow' ? [null] : new Array<null>(workers).fill(null);
    return new ProcessPool({ devices, trialModule });
  }
  if (opts.gpus?.length) throw new UserError(`--gpus needs --backend torch or tensorflow; this campaign trains on ${config.backend}`);
  return new ThreadPool({ workers, trialModule, maxHeapMb: opts.maxHeapMb });
}

/** Where a trial's trained model goes when the campaign saves models. */
export function trialModelDir(dir: string, index: number): string {
  return join(dir, 'models', `trial-${index}`);
}

function requestFor(dir: string, config: CampaignConfig, t: TrialRecord): TrialRequest {
  const settings = { ...config.settings, backend: config.backend as TrialRequest['settings']['backend'] };
  return { net: config.net, widths: t.widths, settings, seed: t.seed, saveDir: config.saveModels ? trialModelDir(dir, t.index) : undefined };
}

/** Runs every runnable trial of a campaign (pending, interrupted, or failed with attempts left) to completion. */
export async function runCampaign(dir: string, opts: RunOptions = {}): Promise<RunSummary> {
  const started = performance.now();
  const lock = CampaignLock.acquire(dir);
  let store: CampaignStore | null = null;
  let executor: TrialExecutor | null = null;
  let progress: CampaignProgress | null = null;
  let handleSignal: (signal: NodeJS.Signals) => void = () => {};
  const onSignal = (signal: NodeJS.Signals) => handleSignal(signal);
  try {
    store = openCampaign(dir);
    const config = store.config();
    const maxAttempts = opts.maxAttempts ?? config.maxAttempts;
    // Only one coordinator runs (the lock), so trials left 'running' belong to one that died.
    store.recoverInterrupted();
    const queue = store.runnable(maxAttempts);
    const counts = store.counts();
    const retrying = queue.filter((t) => t.state === 'failed').length;
    progress = new CampaignProgress(
      { total: counts.total, complete: counts.complete, failed: counts.failed - retrying, running: 0 },
      opts.progress,
    );
    progress.seedBest(store.trials({ state: 'complete' }));
    let coordinatorMs = 0;
    let trialSeconds = 0;
    let trialsRun = 0;
    let lastExport = 0;
    let stopping = false;
    let inputError: string | null = null;
    let fatal: unknown = null;
    const inFlight = new Set<number>();
    const s = store;
    const p = progress;

    const exportNow = () => {
      exportTrials(dir, config, s.trials());
      lastExport = performance.now();
    };
    exportNow();
    if (queue.length === 0) {
      p.stop();
      const { csv, jsonl } = exportTrials(dir, config, s.trials());
      return summary(false, csv, jsonl, 0);
    }

    const exec = makeExecutor(config, opts, queue.length);
    executor = exec;
    p.log(`${queue.length} trial(s) to run on ${exec.slots} ${exec instanceof ProcessPool ? 'process' : 'thread'} worker(s), backend ${config.backend}`);

    handleSignal = (signal) => {
      if (signal === 'SIGINT' && !stopping) {
        stopping = true;
        p.log(`stopping: waiting for ${inFlight.size} running trial(s) to finish (Ctrl-C again to stop now; they go back to pending)`);
        wake();
        return;
      }
      // Second Ctrl-C or SIGTERM: in-flight trials go back to pending, finished ones are already stored.
      for (const index of inFlight) s.release(index);
      exportNow();
      p.stop();
      s.close();
      lock.release();
      process.stderr.write(`stopped; ${inFlight.size} running trial(s) returned to pending; continue with: prunespace resume ${dir}\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    if (opts.handleSignals) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }

    let wake: () => void = () => {};
    const launch = (t: TrialRecord) => {
      const t0 = performance.now();
      inFlight.add(t.index);
      s.markRunning(t.index, null);
      p.started();
      const curves: EpochCurve[] = [];
      coordinatorMs += performance.now() - t0;
      void exec
        .run({ index: t.index, request: requestFor(dir, config, t) }, (curve) => {
          curves.push(curve);
          s.recordCurves(t.index, curves);
        })
        .then((outcome) => settle(t, outcome))
        .catch((e: unknown) => {
          // The store could not record an outcome (disk full, say): stop scheduling and surface it after the pool drains.
          inFlight.delete(t.index);
          fatal ??= e;
          stopping = true;
          wake();
        });
    };
    const settle = (t: TrialRecord, outcome: TrialOutcome) => {
      const t0 = performance.now();
      inFlight.delete(t.index);
      if (outcome.inputError) {
        // Bad input (data files, widths) would fail every trial alike: stop and say so instead of burning attempts.
        s.release(t.index);
        inputError ??= outcome.result.error ?? 'bad input';
        stopping = true;
      } else {
        s.recordResult(t.index, outcome.result, outcome.worker);
        trialSeconds += outcome.result.wallSeconds;
        trialsRun++;
        const attempts = t.attempts + 1;
        const willRetry = outcome.result.status === 'failed' && attempts < maxAttempts;
        const record = { ...t, ...fromOutcome(outcome), attempts, state: outcome.result.status } as TrialRecord;
        p.finished(record, willRetry);
        if (willRetry) queue.push({ ...record, attempts });
        if (performance.now() - lastExport > (opts.exportEveryMs ?? 2000)) exportNow();
      }
      coordinatorMs += performance.now() - t0;
      wake();
    };

    await new Promise<void>((done) => {
      wake = () => {
        while (!stopping && inFlight.size < exec.slots && queue.length > 0) launch(queue.shift()!);
        if (inFlight.size === 0 && (stopping || queue.length === 0)) done();
      };
      wake();
    });

    const tEnd = performance.now();
    const { csv, jsonl } = exportTrials(dir, config, s.trials());
    coordinatorMs += performance.now() - tEnd;
    p.stop();
    if (fatal) throw fatal;
    if (inputError) throw new UserError(inputError);
    return summary(stopping, csv, jsonl, coordinatorMs);

    function summary(interrupted: boolean, csv: string, jsonl: string, ms: number): RunSummary {
      return {
        dir,
        counts: s.counts(),
        interrupted,
        csv,
        jsonl,
        wallSeconds: (performance.now() - started) / 1000,
        trialSeconds,
        trialsRun,
        slots: executor?.slots ?? 0,
        coordinatorSeconds: ms / 1000,
      };
    }
  } finally {
    if (opts.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    progress?.stop();
    await executor?.close();
    store?.close();
    lock.release();
  }
}

function fromOutcome({ result, worker }: TrialOutcome): Partial<TrialRecord> {
  return {
    valError: result.valError ?? null,
    testError: result.testError ?? null,
    trainLoss: result.trainLoss ?? null,
    curves: result.curves,
    wallSeconds: result.wallSeconds,
    worker,
    error: result.status === 'failed' ? (result.error ?? null) : null,
  };
}
