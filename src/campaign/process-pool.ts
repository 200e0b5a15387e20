/** Child-process pool for native engines (tensorflow, torch): one process per GPU, each pinned with CUDA_VISIBLE_DEVICES. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { EpochCurve, TrialRequest } from '../training/types.js';
import { abortReason, crashedResult, siblingModule, type TrialExecutor, type TrialHooks, type TrialOutcome, type TrialTask } from './executor.js';

export type ProcessTaskMessage = { id: number; request: TrialRequest; trialModule: string };
export type ProcessMessage =
  | { type: 'ready' }
  | { type: 'epoch'; id: number; curve: EpochCurve }
  /** The worker field is filled in by the pool, which knows the process's name. */
  | { type: 'result'; id: number; outcome: TrialOutcome };

export interface ProcessPoolOptions {
  /** One child per entry: a GPU id for CUDA_VISIBLE_DEVICES, or null to leave the variable alone (CPU stand-in). */
  devices: Array<string | null>;
  trialModule: string;
}

interface InFlight {
  id: number;
  started: number;
  backend: string;
  onEpoch: (c: EpochCurve) => void;
  resolve: (o: TrialOutcome) => void;
  /** Set when the coordinator aborted the trial: the process is killed and this is why. */
  cancelled?: string;
}

/** One device's worker process; restarted after a crash, reused between trials. */
class DeviceWorker {
  private child: ChildProcess | null = null;
  private current: InFlight | null = null;
  private stderrTail = '';

  constructor(
    private readonly device: string | null,
    private readonly slot: number,
  ) {}

  get busy(): boolean {
    return this.current !== null;
  }

  private name(child: ChildProcess): string {
    return `${this.device === null ? `proc${this.slot}` : `gpu${this.device}`}-pid${child.pid}`;
  }

  private spawn(): ChildProcess {
    const env: NodeJS.ProcessEnv = { ...process.env, TF_FORCE_GPU_ALLOW_GROWTH: 'true' };
    if (this.device !== null) env.CUDA_VISIBLE_DEVICES = this.device;
    const child = fork(fileURLToPath(siblingModule(import.meta.url, './process-worker')), [], {
      env,
      execArgv: process.execArgv,
      stdio: ['ignore', 'inherit', 'pipe', 'ipc'],
      serialization: 'advanced',
    });
    // Keep the end of stderr: a native crash or OOM explains itself there.
    child.stderr!.on('data', (d: Buffer) => {
      this.stderrTail = (this.stderrTail + d.toString()).slice(-2000);
      process.stderr.write(d);
    });
    child.on('message', (m: ProcessMessage) => this.onMessage(child, m));
    child.on('exit', (code, signal) => this.onExit(child, code, signal));
    this.stderrTail = '';
    return child;
  }

  private onMessage(child: ChildProcess, m: ProcessMessage): void {
    const t = this.current;
    if (m.type === 'ready' || !t || m.id !== t.id) return;
    if (m.type === 'epoch') return t.onEpoch(m.curve);
    this.current = null;
    t.resolve({ ...m.outcome, worker: this.name(child) });
  }

  private onExit(child: ChildProcess, code: number | null, signal: NodeJS.Signals | null): void {
    if (this.child === child) this.child = null;
    const t = this.current;
    if (!t) return;
    this.current = null;
    const how = signal ? `killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}` : `exited with code ${code}`;
    const tail = this.stderrTail.trim().split('\n').slice(-1)[0];
    if (t.cancelled) return t.resolve({ result: crashedResult(`cancelled: ${t.cancelled}`, t.started, t.backend), worker: this.name(child), cancelled: t.cancelled });
    const reason = `worker process ${how}${tail ? `: ${tail}` : ''}`;
    t.resolve({ result: crashedResult(reason, t.started, t.backend), worker: this.name(child) });
  }

  run(id: number, task: TrialTask, trialModule: string, onEpoch: (c: EpochCurve) => void, signal: AbortSignal): Promise<TrialOutcome> {
    const child = (this.child ??= this.spawn());
    return new Promise((resolve) => {
      const current: InFlight = { id, started: performance.now(), backend: task.request.settings.backend, onEpoch, resolve };
      this.current = current;
      // A native engine cannot be interrupted from outside: cancel ends the process, the next trial starts a fresh one.
      const cancel = () => {
        if (this.current !== current) return;
        current.cancelled = abortReason(signal);
        child.kill('SIGKILL');
      };
      if (signal.aborted) return cancel();
      signal.addEventListener('abort', cancel, { once: true });
      const msg: ProcessTaskMessage = { id, request: task.request, trialModule };
      child.send(msg);
    });
  }

  stop(): Promise<void> {
    const child = this.child;
    this.child = null;
    if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  }
}

export class ProcessPool implements TrialExecutor {
  readonly kind = 'process' as const;
  readonly durable = false;
  readonly slots: number;
  private readonly workers: DeviceWorker[];
  private nextId = 0;

  constructor(private readonly opts: ProcessPoolOptions) {
    this.workers = opts.devices.map((d, i) => new DeviceWorker(d, i));
    this.slots = this.workers.length;
  }

  run(task: TrialTask, hooks: TrialHooks, signal: AbortSignal): Promise<TrialOutcome> {
    const worker = this.workers.find((w) => !w.busy);
    if (!worker) throw new Error('ProcessPool.run called with every worker busy; the coordinator schedules at most `slots` trials');
    return worker.run(this.nextId++, task, this.opts.trialModule, (c) => hooks.onEpoch(c), signal);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.stop()));
  }
}
