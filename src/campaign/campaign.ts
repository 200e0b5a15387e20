/**
 * The campaign coordinator: the store's only writer. It starts attempts, hands them to an executor from the
 * registry, renews and expires leases, and records each outcome under its attempt token.
 */
import { rmSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { buildNet } from '../nets/registry.js';
import type { EpochCurve } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { defaultTrialModule, executors, NATIVE_BACKENDS, type ExecutorKind, type TrialExecutor, type TrialOutcome } from './executor.js';
import { TrialsExport } from './export.js';
import { checkpointsDir, makeJob, resolveRequest, trainsInRungs } from './job.js';
import { CampaignLock } from './lock.js';
import { prepareInit } from './parent.js';
import { CampaignProgress, type ProgressOptions } from './progress.js';
import { rungDecisions, seedForIndex } from './rungs.js';
import { openCampaign, type Attempt, type CampaignStore, type StateCounts } from './store.js';
import type { CampaignConfig, TrialRecord } from './types.js';

export interface RunOptions {
  /** Worker threads (wasm, cpu) or stand-in processes; default one per core. */
  workers?: number;
  /** GPU ids for native engines, one child process each. */
  gpus?: string[];
  /** Which registered executor; default: queue with --queue, process for native engines, thread otherwise. */
  executor?: ExecutorKind;
  /** Redis URL: trials go to workers on any host through BullMQ. */
  queue?: string;
  /** Allow a password-less redis:// URL to a host off loopback. */
  insecure?: boolean;
  /** Overrides the campaign's stored retry budget. */
  maxAttempts?: number;
  /** A trial running longer than this is cancelled and fails (then retries while attempts are left). */
  trialTimeoutMs?: number;
  /** A running trial with no heartbeat for this long is failed and retried (default 60 s). */
  leaseMs?: number;
  /** Module whose `runTrial` trains a candidate; default src/campaign/run-trial (training, or distillation by init mode). */
  trialModule?: string;
  /** Heap cap per worker thread in MB. */
  maxHeapMb?: number;
  progress?: ProgressOptions;
  /** Install Ctrl-C handling (CLI): first stops cleanly, second exits at once. */
  handleSignals?: boolean;
  /** Minimum time between rewrites of trials.csv/jsonl while trials finish. */
  exportEveryMs?: number;
  /** The caller already holds the campaign lock (the rounds loop holds it across rounds). */
  lockHeld?: boolean;
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
  /** Stale results refused this session (late results of abandoned attempts). */
  refused: number;
}

const DEFAULT_LEASE_MS = 60_000;

function executorKind(config: CampaignConfig, opts: RunOptions): ExecutorKind {
  if (opts.queue) return 'queue';
  // The torch addon is safe in worker threads (tested with concurrent trials); on GPUs it gets one process per GPU.
  const perProcess = config.backend === 'tensorflow' || (config.backend === 'torch' && !!opts.gpus?.length);
  return opts.executor ?? (perProcess ? 'process' : 'thread');
}

async function makeExecutor(config: CampaignConfig, opts: RunOptions, runnable: number, log: (l: string) => void): Promise<TrialExecutor> {
  const kind = executorKind(config, opts);
  if (opts.gpus?.length && kind === 'thread') throw new UserError(`--gpus needs a native engine (--backend torch or tensorflow); this campaign trains on ${config.backend}`);
  // Never start more workers than there are trials to run: each one loads a backend and the data.
  const workers = Math.max(1, Math.min(opts.workers ?? availableParallelism(), runnable));
  const devices = opts.gpus?.length ? opts.gpus : config.backend === 'tensorflow' ? [null] : new Array<null>(workers).fill(null);
  return executors[kind]({
    workers: kind === 'queue' ? (opts.workers ?? 256) : workers,
    devices,
    trialModule: opts.trialModule ?? defaultTrialModule(),
    maxHeapMb: opts.maxHeapMb,
    queue: opts.queue ? { url: opts.queue, insecure: opts.insecure } : undefined,
    config,
    log,
  });
}

/** Where a trial's trained model goes when the campaign saves models. */
export function trialModelDir(dir: string, index: number): string {
  return join(dir, 'models', `trial-${index}`);
}

interface Running {
  trial: TrialRecord;
  attempt: Attempt;
  abort: AbortController;
  timer?: NodeJS.Timeout;
  /** The lease lapsed and the store already failed this attempt; its outcome, if any, is stale. */
  expired?: boolean;
}

/** Runs every runnable trial of a campaign (waiting, interrupted, or failed with attempts left) to completion. */
export async function runCampaign(dir: string, opts: RunOptions = {}): Promise<RunSummary> {
  const started = performance.now();
  const lock = opts.lockHeld ? null : CampaignLock.acquire(dir);
  let store: CampaignStore | null = null;
  let executor: TrialExecutor | null = null;
  let progress: CampaignProgress | null = null;
  let ticker: NodeJS.Timeout | undefined;
  let handleSignal: (signal: NodeJS.Signals) => void = () => {};
  const onSignal = (signal: NodeJS.Signals) => handleSignal(signal);
  try {
    store = openCampaign(dir);
    const s = store;
    const config = s.config();
    const maxAttempts = opts.maxAttempts ?? config.maxAttempts;
    const leaseMs = opts.leaseMs ?? DEFAULT_LEASE_MS;
    const durable = executorKind(config, opts) === 'queue';
    // Only one coordinator runs (the lock), so trials left running belong to one that died. A local pool died with
    // it: those trials wait again. A queue's workers may still hold them: they are handed back to the queue as they are.
    if (!durable) s.recoverInterrupted();
    // Decisions a coordinator that died left unmade (a rung closed by its last result, finalists not yet created).
    const scheduled = schedule(dir, s, config, maxAttempts);
    const adopted = durable ? s.runningAttempts() : [];
    const queue = s.runnable(maxAttempts);
    const retrying = queue.filter((t) => t.state === 'failed').length;
    const work = workCounts(s.trials());
    progress = new CampaignProgress({ ...work, failed: work.failed - retrying, running: 0 }, opts.progress);
    const p = progress;
    p.seedBest(s.trials({ state: 'complete' }));
    for (const line of scheduled.lines) p.log(line);
    let refused = 0;
    s.onRefused = (r) => {
      refused++;
      p.log(`refused a stale ${r.what} for trial ${r.index}: ${r.reason}`);
    };
    let coordinatorMs = 0;
    let trialSeconds = 0;
    let trialsRun = 0;
    let lastExport = 0;
    let stopping = false;
    let inputError: string | null = null;
    let fatal: unknown = null;
    const inFlight = new Map<number, Running>();

    const exporter = new TrialsExport(dir, config);
    const exportNow = () => {
      exporter.write(s);
      lastExport = performance.now();
    };
    const summary = (interrupted: boolean, csv: string, jsonl: string, ms: number): RunSummary => ({
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
      refused,
    });
    exportNow();
    if (queue.length === 0 && adopted.length === 0) {
      p.stop();
      const { csv, jsonl } = exporter.write(s);
      return summary(false, csv, jsonl, 0);
    }

    // The parent and its scores (inherit, distill) exist before any trial is dispatched; cached ones are reused.
    const plan = await prepareInit(dir, config, (line) => p.log(line));
    const exec = await makeExecutor(config, opts, queue.length + adopted.length, (line) => p.log(line));
    executor = exec;
    p.log(`${queue.length + adopted.length} trial(s) to run on ${exec.kind === 'queue' ? 'the queue' : `${exec.slots} ${exec.kind} worker(s)`}, backend ${config.backend}`);

    handleSignal = (signal) => {
      if (signal === 'SIGINT' && !stopping) {
        stopping = true;
        p.log(`stopping: waiting for ${inFlight.size} running trial(s) to finish (Ctrl-C again to stop now; they go back to waiting)`);
        wake();
        return;
      }
      // Second Ctrl-C or SIGTERM: in-flight trials go back to waiting, finished ones are already stored.
      for (const r of inFlight.values()) s.release(r.attempt);
      exportNow();
      p.stop();
      s.close();
      lock?.release();
      process.stderr.write(`stopped; ${inFlight.size} running trial(s) returned to waiting; continue with: prunespace resume ${dir}\n`);
      process.exit(signal === 'SIGINT' ? 130 : 143);
    };
    if (opts.handleSignals) {
      process.on('SIGINT', onSignal);
      process.on('SIGTERM', onSignal);
    }

    let wake: () => void = () => {};
    const dispatch = (t: TrialRecord, attempt: Attempt) => {
      const abort = new AbortController();
      const running: Running = { trial: t, attempt, abort };
      inFlight.set(t.index, running);
      if (opts.trialTimeoutMs) {
        const seconds = Math.round(opts.trialTimeoutMs / 1000);
        running.timer = setTimeout(() => abort.abort(new Error(`timed out after ${seconds}s`)), opts.trialTimeoutMs);
      }
      const init = plan.initFor(t.widths);
      if (init) s.recordInit(t.index, init);
      const job = makeJob(config, t, attempt, init);
      const request = resolveRequest(job, { dataDir: config.settings.data.dir, modelsDir: join(dir, 'models'), runDir: dir });
      const curves: EpochCurve[] = [];
      void exec
        .run(
          { job, request },
          {
            onEpoch: (curve) => {
              curves.push(curve);
              s.recordCurves(attempt, curves, leaseMs);
            },
            onHeartbeat: (worker) => void s.heartbeat(attempt, leaseMs, worker || undefined),
          },
          abort.signal,
        )
        .then((outcome) => settle(running, outcome))
        .catch((e: unknown) => {
          // The store could not record an outcome (disk full, say): stop scheduling and surface it after the pool drains.
          if (inFlight.get(t.index) === running) inFlight.delete(t.index);
          fatal ??= e;
          stopping = true;
          wake();
        });
    };
    const launch = (t: TrialRecord) => {
      const t0 = performance.now();
      const attempt = s.start(t.index, { leaseMs, maxAttempts });
      p.started();
      coordinatorMs += performance.now() - t0;
      dispatch(t, attempt);
    };
    const retryable = (attempts: number, state: string) => state === 'failed' && attempts < maxAttempts;
    const settle = (r: Running, outcome: TrialOutcome) => {
      const t0 = performance.now();
      const { trial: t, attempt } = r;
      clearTimeout(r.timer);
      // An expired attempt's entry may already belong to its retry.
      if (inFlight.get(t.index) === r) inFlight.delete(t.index);
      if (r.expired) {
        // The store failed this attempt when its lease lapsed; a late result is refused there, and logged.
        s.finish(attempt, outcome.result, outcome.worker);
      } else if (outcome.inputError) {
        // Bad input (data files, widths) would fail every trial alike: stop and say so instead of burning attempts.
        s.release(attempt);
        inputError ??= outcome.result.error ?? 'bad input';
        stopping = true;
      } else if (outcome.cancelled && stopping) {
        s.release(attempt);
      } else if (s.finish(attempt, outcome.result, outcome.worker, { paused: belowTop(config, t) })) {
        trialSeconds += outcome.result.wallSeconds;
        trialsRun++;
        const willRetry = retryable(attempt.attempt, outcome.result.status);
        const record = { ...t, ...fromOutcome(outcome), attempts: attempt.attempt, state: outcome.result.status } as TrialRecord;
        p.finished(record, willRetry);
        if (willRetry) queue.push(record);
        const next = schedule(dir, s, config, maxAttempts);
        for (const line of next.lines) p.log(line);
        p.addWork(next.runnable.length);
        queue.push(...next.runnable);
        if (performance.now() - lastExport > (opts.exportEveryMs ?? 2000)) exportNow();
      }
      coordinatorMs += performance.now() - t0;
      wake();
    };

    // Leases: a local pool reports a dead worker itself, so the coordinator renews its leases; queue workers
    // renew theirs with heartbeats, and a lease that lapses fails the attempt, which then retries.
    ticker = setInterval(() => {
      const t0 = performance.now();
      if (!durable) for (const r of inFlight.values()) s.heartbeat(r.attempt, leaseMs);
      for (const a of s.expireLeases()) {
        const r = inFlight.get(a.index);
        p.log(`trial ${a.index}: lease expired (no heartbeat for ${Math.round(leaseMs / 1000)}s); it will be retried if attempts are left`);
        if (!r) continue;
        r.expired = true;
        r.abort.abort(new Error('lease expired'));
        inFlight.delete(a.index);
        p.finished({ ...r.trial, attempts: a.attempt, state: 'failed', error: 'lease expired' }, a.attempt < maxAttempts);
        if (a.attempt < maxAttempts) queue.push({ ...r.trial, attempts: a.attempt, state: 'failed' });
      }
      coordinatorMs += performance.now() - t0;
      wake();
    }, Math.max(200, Math.min(5000, leaseMs / 4)));

    for (const { trial, attempt } of adopted) {
      s.heartbeat(attempt, leaseMs);
      p.started();
      dispatch(trial, attempt);
    }
    await new Promise<void>((done) => {
      wake = () => {
        while (!stopping && inFlight.size < exec.slots && queue.length > 0) launch(queue.shift()!);
        if (inFlight.size === 0 && (stopping || queue.length === 0)) done();
      };
      wake();
    });

    const tEnd = performance.now();
    if (!stopping && queue.length === 0) await exec.retire?.();
    // After the workers retire, so the timing does not compete with training.
    if (config.measureLatency && !stopping && !fatal && !inputError) await measureLatencies(s, config, (line) => p.log(line));
    const { csv, jsonl } = exporter.write(s);
    coordinatorMs += performance.now() - tEnd;
    p.stop();
    if (fatal) throw fatal;
    if (inputError) throw new UserError(inputError);
    return summary(stopping, csv, jsonl, coordinatorMs);
  } finally {
    clearInterval(ticker);
    if (opts.handleSignals) {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
    }
    progress?.stop();
    await executor?.close();
    store?.close();
    lock?.release();
  }
}

/** A candidate training a rung below the top: finishing it pauses the trial for the scheduler. */
function belowTop(config: CampaignConfig, t: TrialRecord): boolean {
  return trainsInRungs(config, t) && t.rung < config.rungs!.rungs - 1;
}

/** Units of training for the progress line: each rung a candidate was granted is one, every other trial one. */
function workCounts(trials: TrialRecord[]): { total: number; complete: number; failed: number } {
  let total = 0;
  let complete = 0;
  let failed = 0;
  for (const t of trials) {
    total += t.role === 'sample' ? t.rung + 1 : 1;
    complete += t.role === 'sample' ? t.rungResults.filter((r) => r.rung <= t.rung).length : t.state === 'complete' ? 1 : 0;
    if (t.state === 'failed') failed++;
  }
  return { total, complete, failed };
}

/**
 * Applies the rung scheduler's decisions to the store until none is left (a prune may close the next rung), removing
 * the checkpoints of candidates that are done; returns the trials that became runnable and a line per decision.
 */
function schedule(dir: string, s: CampaignStore, config: CampaignConfig, maxAttempts: number): { runnable: TrialRecord[]; lines: string[] } {
  const lines: string[] = [];
  const runnable: number[] = [];
  const plan = config.rungs;
  if (!plan) return { runnable: [], lines };
  for (;;) {
    const trials = s.trials();
    const d = rungDecisions(plan, trials, maxAttempts);
    if (!d.promote.length && !d.prune.length && !d.finalists.length) break;
    for (const i of d.prune) if (s.prune(i)) rmSync(join(dir, checkpointsDir(i)), { recursive: true, force: true });
    for (const i of d.promote) if (s.promote(i)) runnable.push(i);
    const rungOf = new Map(trials.map((t) => [t.index, t.rung]));
    if (d.prune.length || d.promote.length) {
      const at = [...new Set([...d.promote, ...d.prune].map((i) => rungOf.get(i)!))].join(', ');
      lines.push(`rung ${at}: ${d.promote.length} candidate(s) promoted${d.promote.length ? ` (${d.promote.join(', ')})` : ''}, ${d.prune.length} pruned`);
    }
    if (d.finalists.length) {
      const byIndex = new Map(trials.map((t) => [t.index, t]));
      let index = s.nextTrialIndex();
      const finalists = d.finalists.map((f) => {
        const c = byIndex.get(f.finalistOf)!;
        return {
          index: index++, widths: c.widths, complexity: c.complexity, seed: seedForIndex(f.seedIndex, trials, config.seed),
          role: 'finalist' as const, finalistOf: f.finalistOf, seedIndex: f.seedIndex, rung: plan.rungs - 1, round: f.round,
        };
      });
      for (const round of new Set(finalists.map((f) => f.round))) s.addTrials(round, finalists.filter((f) => f.round === round));
      runnable.push(...finalists.map((f) => f.index));
      const of = [...new Set(d.finalists.map((f) => f.finalistOf))];
      lines.push(`finalists: candidate(s) ${of.join(', ')} retrained from scratch with ${plan.finalistSeeds} seed(s) each at the final budget`);
    }
  }
  // Candidates done with their top rung no longer need their checkpoints.
  for (const t of s.trials({ state: 'complete', role: 'sample' })) if (trainsInRungs(config, t)) rmSync(join(dir, checkpointsDir(t.index)), { recursive: true, force: true });
  const wanted = new Set(runnable);
  return { runnable: s.trials().filter((t) => wanted.has(t.index) && t.state === 'waiting'), lines };
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

/** Times every completed trial without a latency yet on the campaign's target (the pruned widths; weights do not change timing). */
async function measureLatencies(s: CampaignStore, config: CampaignConfig, log: (line: string) => void): Promise<void> {
  const todo = s.trials({ state: 'complete' }).filter((t) => t.latencyMs === undefined);
  if (todo.length === 0) return;
  const { latencyAtWidths, ortDescription } = await import('../export/ort-bench.js');
  const spec = buildNet(config.net);
  log(`measuring batch-1 latency of ${todo.length} trial(s) on ${ortDescription(1)}`);
  for (const t of todo) {
    const ms = await latencyAtWidths(spec, t.widths, 1, { batch: 1, repeats: 5, minRepeatMs: 50, warmup: 2 });
    s.recordLatency(t.index, ms, config.measureLatency!);
  }
}
