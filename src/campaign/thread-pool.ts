/**
 * Worker-thread pool (piscina) for the wasm, cpu and CPU torch backends: one thread per core, one candidate per
 * thread, and one read-only copy of the dataset in shared memory for all of them.
 */
import { MessageChannel } from 'node:worker_threads';
import { Piscina } from 'piscina';
import { buildNet } from '../nets/registry.js';
import { loadSharedRaw, rawKey, type DataHints, type SharedRawDataset } from '../training/data/load.js';
import type { TrialRequest } from '../training/types.js';
import type { EpochCurve } from '../training/types.js';
import { abortReason, crashedResult, siblingModule, type TrialExecutor, type TrialHooks, type TrialOutcome, type TrialTask } from './executor.js';
import type { ThreadTask } from './thread-worker.js';

export interface ThreadPoolOptions {
  workers: number;
  trialModule: string;
  /** Heap cap per worker thread; past it the thread dies with an out-of-memory error and only its trial fails. */
  maxHeapMb?: number;
}

export class ThreadPool implements TrialExecutor {
  readonly kind = 'thread' as const;
  readonly durable = false;
  readonly slots: number;
  private readonly pool: Piscina;
  /** Datasets decoded here once and lent to every thread, by the settings they answer. */
  private readonly shared = new Map<string, SharedRawDataset | undefined>();
  /** Input shape and classes by net reference: every trial of a campaign names the same net, built once here. */
  private readonly hints = new Map<string, DataHints | undefined>();

  constructor(private readonly opts: ThreadPoolOptions) {
    this.slots = opts.workers;
    this.pool = new Piscina({
      filename: siblingModule(import.meta.url, './thread-worker').href,
      minThreads: opts.workers,
      maxThreads: opts.workers,
      concurrentTasksPerWorker: 1,
      // Training threads are expensive to start (backend and data load); keep them for the whole campaign.
      idleTimeout: 60 * 60 * 1000,
      // So `--import tsx` (tests, dev) reaches the workers.
      execArgv: process.execArgv,
      resourceLimits: opts.maxHeapMb ? { maxOldGenerationSizeMb: opts.maxHeapMb } : undefined,
    });
  }

  async run(task: TrialTask, hooks: TrialHooks, signal: AbortSignal): Promise<TrialOutcome> {
    const started = performance.now();
    const { port1, port2 } = new MessageChannel();
    port1.on('message', (curve: EpochCurve) => hooks.onEpoch(curve));
    const payload: ThreadTask = { request: task.request, trialModule: this.opts.trialModule, progress: port2, data: this.sharedData(task.request) };
    const backend = task.request.settings.backend;
    try {
      // Aborting a running piscina task terminates its thread; the pool starts a fresh one.
      return (await this.pool.run(payload, { transferList: [port2], signal })) as TrialOutcome;
    } catch (e) {
      if (signal.aborted) return { result: crashedResult(`cancelled: ${abortReason(signal)}`, started, backend), worker: 'thread', cancelled: abortReason(signal) };
      const err = e as NodeJS.ErrnoException;
      const reason = err.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'worker thread ran out of memory' : `worker thread crashed: ${err.message}`;
      return { result: crashedResult(reason, started, backend), worker: 'thread' };
    } finally {
      port1.close();
    }
  }

  /**
   * The trial's dataset in shared memory, decoded on the first trial that needs it. Data that does not load here is
   * left to the thread, which fails the trial with the reason as before.
   */
  private sharedData(req: TrialRequest): SharedRawDataset | undefined {
    const net = JSON.stringify(req.net);
    if (!this.hints.has(net)) {
      try {
        const { input, classes } = buildNet(req.net).ref;
        this.hints.set(net, { shape: input, classes });
      } catch {
        this.hints.set(net, undefined);
      }
    }
    const hints = this.hints.get(net);
    if (!hints) return undefined;
    const key = rawKey(req.settings.data, hints);
    if (!this.shared.has(key)) {
      try {
        this.shared.set(key, loadSharedRaw(req.settings.data, hints));
      } catch {
        this.shared.set(key, undefined);
      }
    }
    return this.shared.get(key);
  }

  async close(): Promise<void> {
    await this.pool.destroy();
  }
}
