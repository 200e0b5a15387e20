/** One coordinator per campaign: a pid lock file, taken over when its owner is dead (kill -9, crash). */
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { UserError } from '../util/errors.js';

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

export class CampaignLock {
  private constructor(private readonly path: string) {}

  static acquire(dir: string): CampaignLock {
    const path = join(dir, 'coordinator.lock');
    for (let tries = 0; tries < 2; tries++) {
      try {
        writeFileSync(path, String(process.pid), { flag: 'wx' });
        return new CampaignLock(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        const owner = Number(readFileSync(path, 'utf8').trim());
        if (owner && owner !== process.pid && alive(owner)) {
          throw new UserError(`${dir} is being run by another prunespace process (pid ${owner}); watch it with prunespace status ${dir}`);
        }
        rmSync(path, { force: true });
      }
    }
    throw new UserError(`${dir}: could not take the coordinator lock ${path}`);
  }

  release(): void {
    rmSync(this.path, { force: true });
  }
}
