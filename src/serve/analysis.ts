/** Runs the full report analysis of `serve` in a child process, one at a time, keeping the latest result per main run. */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { PageSection } from '../analysis/report/page.js';
import type { Row } from '../analysis/report/charts.js';
import type { LivePlot } from './live.js';

export interface AnalysisRequest {
  key: string;
  dirs: string[];
  main: number;
}

export interface AnalysisResult {
  /** The request's key: which run was main and which store versions it read. */
  key: string;
  complete: number;
  meta: string;
  sections: PageSection[];
  plots: LivePlot[];
  /** The rows of every CSV the report writes, by file name. */
  csv: Record<string, Row[]>;
  error?: string;
}

// Under tsx the sources run as .ts; built, as .js.
const CHILD = fileURLToPath(new URL(`./analysis-child${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

export class AnalysisRunner {
  private child: ChildProcess | null = null;
  private busy: AnalysisRequest | null = null;
  private queued: AnalysisRequest | null = null;
  private readonly results = new Map<number, AnalysisResult>();
  /** Called when a result arrives. */
  onResult: (main: number) => void = () => {};

  private lastStart = -Infinity;
  private wake: NodeJS.Timeout | null = null;

  constructor(
    private readonly dirs: string[],
    /** Least time between two analyses' starts, ms. */
    private readonly gapMs: number,
  ) {}

  latest(main: number): AnalysisResult | undefined {
    return this.results.get(main);
  }

  /** Asks for the analysis of `main` at the store versions `key` names, unless it is done or under way. */
  request(main: number, key: string): void {
    if (this.results.get(main)?.key === key || this.busy?.key === key) return;
    this.queued = { key, dirs: this.dirs, main };
    this.next();
  }

  private next(): void {
    if (this.busy || !this.queued || this.wake) return;
    const wait = this.lastStart + this.gapMs - Date.now();
    if (wait > 0) {
      this.wake = setTimeout(() => ((this.wake = null), this.next()), wait);
      this.wake.unref();
      return;
    }
    this.lastStart = Date.now();
    this.busy = this.queued;
    this.queued = null;
    this.spawn().send(this.busy);
  }

  private spawn(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(CHILD, [], { execArgv: process.execArgv, stdio: ['ignore', 'ignore', 'inherit', 'ipc'] });
    child.on('message', (r: AnalysisResult) => {
      const main = this.busy?.main;
      this.busy = null;
      if (main !== undefined) {
        this.results.set(main, r);
        this.onResult(main);
      }
      this.next();
    });
    child.on('exit', () => {
      this.child = null;
      this.busy = null;
    });
    child.unref();
    (child.channel as unknown as { unref?: () => void } | undefined)?.unref?.();
    this.child = child;
    return child;
  }

  close(): void {
    if (this.wake) clearTimeout(this.wake);
    this.child?.kill();
    this.child = null;
  }
}
