/**
 * Coordinator overhead with the BullMQ queue: a campaign on a local redis-server (loopback, password) and two
 * `prunespace worker` processes. Overhead is the coordinator process's own CPU time (storing, scheduling, polling
 * Redis, exporting) as a share of the trials' training time.
 * Usage: node --import tsx bench/campaign-queue.ts [--samples 16] [--images 1024] [--epochs 1] [--workers 2]
 */
import { rmSync } from 'node:fs';
import { availableParallelism, cpus, loadavg } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runCampaign } from '../src/campaign/campaign.js';
import { prepareCampaign } from '../src/campaign/create.js';
import { tinySettings, writeTinySpace, tempDir } from '../test/campaign-helpers.js';
import { RedisServer, startWorker, stopProcess } from '../test/queue-helpers.js';

const { values } = parseArgs({
  options: {
    samples: { type: 'string', default: '16' },
    images: { type: 'string', default: '1024' },
    epochs: { type: 'string', default: '1' },
    workers: { type: 'string', default: '2' },
  },
});
const settings = tinySettings(Number(values.images), Number(values.epochs));
const samples = Number(values.samples);
console.log(`machine: ${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, load average ${loadavg()[0].toFixed(2)}; backend ${settings.backend}`);
console.log(`trials: ${samples} tiny resnet20 candidates, ${settings.data.samples} synthetic images, ${settings.epochs} epoch(s); ${values.workers} worker process(es) of 1 slot`);

const redis = await RedisServer.start();
const workers = Array.from({ length: Number(values.workers) }, () => startWorker(redis.url, ['--wait-for-campaign', '0']));
const root = tempDir('bench-queue');
try {
  const prepared = prepareCampaign({ spacePath: writeTinySpace(root), outDir: join(root, 'run'), samples, seed: 1, settings, maxAttempts: 1 });
  const cpu0 = process.cpuUsage();
  const s = await runCampaign(prepared.dir, { queue: redis.url, progress: { quiet: true } });
  const cpu = process.cpuUsage(cpu0);
  const cpuSeconds = (cpu.user + cpu.system) / 1e6;
  console.log(
    `${s.counts.complete}/${s.trialsRun} complete in ${s.wallSeconds.toFixed(1)}s wall; mean trial ${(s.trialSeconds / s.trialsRun).toFixed(2)}s; ` +
      `coordinator CPU ${cpuSeconds.toFixed(2)}s = ${((1000 * cpuSeconds) / s.trialsRun).toFixed(1)}ms per trial = ` +
      `${((100 * cpuSeconds) / s.trialSeconds).toFixed(2)}% of training time (store and export alone: ${((100 * s.coordinatorSeconds) / s.trialSeconds).toFixed(2)}%)`,
  );
} finally {
  await Promise.all(workers.map((w) => stopProcess(w.child)));
  await redis.stop();
  rmSync(root, { recursive: true, force: true });
}
