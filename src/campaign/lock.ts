/** One coordinator per campaign: a pid lock file, taken over when its owner is dead (kill -9, crash). */
import { linkSync, mkdirSync, readFileSync, rmdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

/** A takeover left behind by a process killed inside its few microseconds of work is cleared after this long. */
const STALE_TAKEOVER_MS = 10_000;
const TRIES = 200;

/** Whether the lock's owner still runs; on Linux a reused pid that is not a node process does not count. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('node');
  } catch {
    return true; // no /proc (macOS): trust the pid
  }
}

/** The pid in the lock file, null where there is no file (an unreadable one counts as a dead owner, 0). */
function owner(path: string): number | null {
  try {
    const pid = Number(readFileSync(path, 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : 0;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

function pause(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** mkdir is atomic: whoever creates the directory may replace a stale lock; everyone else waits. */
function takeTakeover(path: string): boolean {
  try {
    mkdirSync(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    try {
      if (Date.now() - statSync(path).mtimeMs > STALE_TAKEOVER_MS) rmdirSync(path);
    } catch {}
    return false;
  }
}

export class CampaignLock {
  private constructor(private readonly path: string) {}

  /**
   * The lock file appears whole (written under a private name, then hard-linked into place, which fails where a lock
   * exists), so a reader never sees a half-written pid. A dead owner's lock is replaced only by the process holding
   * the takeover directory, after it reads the same dead owner again: two processes that both find a stale lock
   * cannot both remove it and both run.
   */
  static acquire(dir: string): CampaignLock {
    const path = join(dir, 'coordinator.lock');
    const takeover = `${path}.takeover`;
    const mine = `${path}.${process.pid}`;
    writeFileSync(mine, String(process.pid));
    try {
      for (let tries = 0; tries < TRIES; tries++) {
        try {
          linkSync(mine, path);
          return new CampaignLock(path);
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        }
        const seen = owner(path);
        if (seen === null) continue; // released meanwhile: try again
        if (seen > 0 && seen !== process.pid && alive(seen)) {
          throw new UserError(`${dir} is being run by another prunespace process (pid ${seen}); watch it with prunespace status ${dir}`);
        }
        if (!takeTakeover(takeover)) {
          pause(5);
          continue;
        }
        try {
          // Still the dead owner we saw (not a live process that replaced it meanwhile): replace it.
          if (owner(path) === seen) rmSync(path, { force: true });
          try {
            linkSync(mine, path);
            return new CampaignLock(path);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
          }
        } finally {
          rmdirSync(takeover);
        }
      }
      throw new UserError(`${dir}: could not take the coordinator lock ${path}`);
    } finally {
      rmSync(mine, { force: true });
    }
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
