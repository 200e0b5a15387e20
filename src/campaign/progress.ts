/** Campaign progress: a redrawn bar on a terminal, one plain line per finished trial otherwise. */
import type { EpochCurve } from '../training/types.js';
import type { TrialRecord } from './types.js';
import { formatCount } from '../util/format.js';

export interface ProgressCounts {
  total: number;
  complete: number;
  failed: number;
  running: number;
}

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds)) return '?';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

export interface ProgressOptions {
  stream?: NodeJS.WriteStream;
  /** Defaults to whether the stream is a terminal. */
  tty?: boolean;
  /** No output at all (library use, benchmarks). */
  quiet?: boolean;
}

export class CampaignProgress {
  private readonly stream: NodeJS.WriteStream;
  private readonly tty: boolean;
  private readonly quiet: boolean;
  private readonly startedAt = performance.now();
  /** Trials finished in this session: the ETA comes from this session's rate, not earlier ones. */
  private finishedHere = 0;
  private bestValError = Infinity;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly counts: ProgressCounts,
    opts: ProgressOptions = {},
  ) {
    this.stream = opts.stream ?? process.stderr;
    this.tty = opts.tty ?? Boolean(this.stream.isTTY);
    this.quiet = opts.quiet ?? false;
    if (this.tty && !this.quiet) {
      // Redraw once a second so elapsed time and ETA move while long trials run.
      this.timer = setInterval(() => this.draw(), 1000);
      this.timer.unref();
    }
  }

  /** Seeds "best so far" with trials finished before a resume. */
  seedBest(trials: TrialRecord[]): void {
    for (const t of trials) if (t.state === 'complete' && t.valError !== null && t.role !== 'reference') this.bestValError = Math.min(this.bestValError, t.valError);
  }

  /** More training became due (a promotion, finalists). */
  addWork(units: number): void {
    this.counts.total += units;
  }

  started(): void {
    this.counts.running++;
    this.draw();
  }

  finished(t: TrialRecord, willRetry: boolean): void {
    this.counts.running--;
    this.finishedHere++;
    if (t.state === 'complete') {
      this.counts.complete++;
      // "Best" is the best candidate; the uniform reference is what candidates are compared with.
      if (t.valError !== null && t.role !== 'reference') this.bestValError = Math.min(this.bestValError, t.valError);
    } else if (!willRetry) {
      this.counts.failed++;
    }
    if (this.quiet) return;
    if (this.tty) return this.draw();
    const what =
      t.state === 'complete'
        ? `complete val_err=${t.valError?.toFixed(4)} flops=${formatCount(t.complexity.flops)} params=${formatCount(t.complexity.params)}`
        : `failed${willRetry ? ' (will retry)' : ''}: ${t.error}`;
    this.stream.write(`trial ${t.index}${t.role === 'reference' ? ' (uniform reference)' : ''} ${what} in ${formatDuration(t.wallSeconds ?? 0)} on ${t.worker} | ${this.summary()}\n`);
  }

  log(line: string): void {
    if (this.quiet) return;
    if (this.tty) this.stream.write('\r\x1b[K');
    this.stream.write(line + '\n');
    this.draw();
  }

  eta(): number {
    const remaining = this.counts.total - this.counts.complete - this.counts.failed;
    if (remaining <= 0) return 0;
    if (this.finishedHere === 0) return Infinity;
    const elapsed = (performance.now() - this.startedAt) / 1000;
    return (elapsed / this.finishedHere) * remaining;
  }

  summary(): string {
    const { total, complete, failed, running } = this.counts;
    const best = Number.isFinite(this.bestValError) ? this.bestValError.toFixed(4) : '-';
    return `${complete + failed}/${total} done (${failed} failed), ${running} running, ETA ${formatDuration(this.eta())}, best val err ${best}`;
  }

  private draw(): void {
    if (!this.tty || this.quiet) return;
    const { total, complete, failed } = this.counts;
    const width = 24;
    const filled = total ? Math.round(((complete + failed) / total) * width) : width;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const line = `[${bar}] ${this.summary()} | ${formatDuration((performance.now() - this.startedAt) / 1000)}`;
    this.stream.write('\r\x1b[K' + line.slice(0, (this.stream.columns || 120) - 1));
  }

  private stopped = false;

  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    if (this.tty && !this.quiet) (this.draw(), this.stream.write('\n'));
  }
}

/**
 * Whole epochs a trial has finished: a trial in rungs has one curve per rung segment, and a rung that stopped
 * mid-epoch leaves a curve of part of it (its `epochs` says where) that the next rung's curve of that epoch completes.
 */
export function epochsDone(curves: readonly EpochCurve[]): number {
  return new Set(curves.filter((c) => c.epochs === undefined).map((c) => c.epoch)).size;
}
