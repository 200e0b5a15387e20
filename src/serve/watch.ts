/** Follows one run's store read-only: a cheap change check, then only the trials that can have changed since. */
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { openCampaign, type CampaignReader, type StateCounts } from '../campaign/store.js';
import type { CampaignConfig, TrialRecord, TrialState } from '../campaign/types.js';
import { UserError } from '../util/errors.js';

const STATES: readonly TrialState[] = ['waiting', 'running', 'complete', 'failed', 'pruned', 'paused'];

function tally(trials: Iterable<TrialRecord>): StateCounts {
  const c: StateCounts = { waiting: 0, running: 0, complete: 0, failed: 0, pruned: 0, paused: 0, total: 0 };
  for (const t of trials) (c[t.state]++, c.total++);
  return c;
}

/**
 * A run's trials, kept current by `poll`. A trial changes only while it runs (start, curves, heartbeat, finish,
 * release) or when a round adds it, so a poll rereads the running trials (by the state index), the ones running at
 * the last poll and those past the highest index known (by the primary key). A trial that started and finished
 * between two polls shows up as a count that does not match, and only then are all trials reread.
 */
export class RunWatcher {
  readonly name: string;
  readonly config: CampaignConfig;
  private readonly reader: CampaignReader;
  private readonly byIndex = new Map<number, TrialRecord>();
  private running = new Set<number>();
  private seen = -1;
  /** Moves whenever the trials changed; views cache by it. */
  version = 0;
  /** Full rereads so far (the first load included), for the benchmark. */
  fullReads = 0;
  /** Trials reread by the last poll that found a change. */
  lastReread = 0;

  constructor(readonly dir: string) {
    if (!existsSync(dir)) throw new UserError(`${dir} does not exist`);
    if (!statSync(dir).isDirectory()) throw new UserError(`${dir} is not a directory`);
    this.reader = openCampaign(dir, { readonly: true });
    this.name = basename(resolve(dir));
    this.config = this.reader.config();
    this.poll();
  }

  trials(): TrialRecord[] {
    return [...this.byIndex.values()].sort((a, b) => a.index - b.index);
  }

  counts(): StateCounts {
    return tally(this.byIndex.values());
  }

  /** Reads what changed since the last poll; true when anything did. */
  poll(): boolean {
    const counter = this.reader.changeCounter();
    if (counter === this.seen) return false;
    this.seen = counter;
    if (this.byIndex.size === 0) return this.readAll();
    const next = Math.max(...this.byIndex.keys()) + 1;
    const fresh = [...this.reader.trials({ state: 'running' }), ...this.reader.trialsAt([...this.running]), ...this.reader.trialsFrom(next)];
    for (const t of fresh) this.byIndex.set(t.index, t);
    const stored = this.reader.counts();
    const known = this.counts();
    if (STATES.some((s) => stored[s] !== known[s]) || stored.total !== known.total) return this.readAll();
    this.running = new Set(fresh.filter((t) => t.state === 'running').map((t) => t.index));
    this.lastReread = fresh.length;
    this.version++;
    return true;
  }

  private readAll(): true {
    const all = this.reader.trials();
    this.byIndex.clear();
    for (const t of all) this.byIndex.set(t.index, t);
    this.running = new Set(all.filter((t) => t.state === 'running').map((t) => t.index));
    this.fullReads++;
    this.lastReread = all.length;
    this.version++;
    return true;
  }

  close(): void {
    this.reader.close();
  }
}
