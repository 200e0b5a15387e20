/** One contender for a campaign's lock: waits until the start time in argv, tries once, holds a winning lock briefly. */
import { CampaignLock } from '../src/campaign/lock.js';

const [dir, start, holdMs] = process.argv.slice(2);
while (Date.now() < Number(start)) {
  // spin: every contender tries at the same moment
}
try {
  const lock = CampaignLock.acquire(dir);
  process.stdout.write('held\n');
  setTimeout(() => {
    lock.release();
    process.exit(0);
  }, Number(holdMs));
} catch (e) {
  process.stdout.write(`refused: ${(e as Error).message}\n`);
  process.exit(3);
}
