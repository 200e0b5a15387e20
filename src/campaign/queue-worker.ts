/**
 * A queue worker host: takes trial jobs from BullMQ and trains them in the same local executors as the
 * coordinator's pool (threads for wasm/cpu, child processes for native engines), so BullMQ's event loop only
 * moves jobs and renews locks. Before taking work it checks it can serve the campaigns in the queue.
 */
import { DelayedError, UnrecoverableError, Worker, type Job } from 'bullmq';
import { existsSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { DATA_SHAPES, loadData } from '../training/data/load.js';
import { METADATA_JSON } from '../training/save.js';
import type { DataSettings, EpochCurve } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { resolveCampaignBackend } from './backend.js';
import { defaultTrialModule, executors, NATIVE_BACKENDS, type ExecutorKind, type TrialExecutor } from './executor.js';
import { parseJob, resolveRequest, type TrialJob } from './job.js';
import { CAMPAIGNS_KEY, QUEUE_NAME, QUEUE_PREFIX, cancelKey, connectQueue, parseQueueUrl, type CampaignEntry, type JobProgress, type JobResult } from './queue.js';
import { isEngineName } from '../training/engine-names.js';
import { torchAddon } from '../training/engines/torch.js';

/** A job this host cannot run waits this long before a worker takes it again (this one or another). */
const HAND_BACK_MS = 1000;

export interface WorkerOptions {
  url: string;
  insecure?: boolean;
  /** Trials at once on threads (wasm/cpu) or processes. */
  workers?: number;
  /** Native engines: GPU ids, `trialsPerGpu` processes each. */
  gpus?: string[];
  trialsPerGpu?: number;
  /** This host's directory of the campaigns' dataset. */
  dataDir?: string;
  /** Root of saved models: <modelsDir>/<campaign name>/trial-<index>. */
  modelsDir: string;
  /** Where this host finds the campaigns' run directories (their parent/): <runsDir>/<campaign name>/parent. */
  runsDir?: string;
  trialModule?: string;
  log: (line: string) => void;
  /** BullMQ lock: a worker silent this long is presumed dead and its job runs elsewhere. */
  lockMs?: number;
  /** Waits at most this long for a campaign to appear before starting anyway (0: do not wait). */
  waitForCampaignMs?: number;
}

/** Whether this host can train a campaign: its dataset loads, its engine is installed, its parent is here; the reason if not. */
export function checkCampaign(entry: CampaignEntry, dataDir?: string, runsDir = 'runs'): string | null {
  if (entry.parent !== undefined) {
    const dir = join(runsDir, entry.name, entry.parent);
    if (!existsSync(join(dir, METADATA_JSON))) return `campaign ${entry.name} starts from its parent, which this host does not have at ${dir}; copy the run directory's ${entry.parent}/ there or pass --runs-dir`;
  }
  if (entry.backend === 'tensorflow' && resolveCampaignBackend('auto').backend !== 'tensorflow') {
    return `campaign ${entry.name} trains on tensorflow, which is not installed on this host`;
  }
  if (entry.backend === 'torch') {
    const { problem } = torchAddon();
    if (problem) return `campaign ${entry.name} trains on torch, which this host cannot run (${problem})`;
  }
  if (!isEngineName(entry.backend)) return `campaign ${entry.name} trains on engine '${entry.backend}', which this prunespace does not know`;
  if (entry.dataset === 'synthetic') return null;
  try {
    const hints = DATA_SHAPES[entry.dataset as keyof typeof DATA_SHAPES];
    if (!hints) return `campaign ${entry.name} needs dataset '${entry.dataset}', which this prunespace does not know`;
    loadData({ name: entry.dataset, ...(dataDir ? { dir: dataDir } : {}) } as DataSettings, hints);
    return null;
  } catch (e) {
    return `campaign ${entry.name} needs dataset ${entry.dataset}, which this host cannot read (${(e as Error).message}); pass --data-dir`;
  }
}

/** Runs a worker host until `stop` resolves; resolves when every active trial has ended. */
export async function runWorker(o: WorkerOptions, stop: Promise<void>): Promise<void> {
  const target = parseQueueUrl(o.url, { insecure: o.insecure });
  const redis = await connectQueue(target);
  redis.on('error', () => {});
  const host = hostname();
  const checked = new Map<string, string | null>();
  const campaigns = async () => Object.values(await redis.hgetall(CAMPAIGNS_KEY)).map((v) => JSON.parse(v) as CampaignEntry);

  // Before taking work: every campaign in the queue must be trainable here.
  const deadline = Date.now() + (o.waitForCampaignMs ?? 0);
  let entries = await campaigns();
  while (!entries.length && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 500));
    entries = await campaigns();
  }
  for (const entry of entries) {
    const why = checkCampaign(entry, o.dataDir, o.runsDir);
    if (why) {
      redis.disconnect();
      throw new UserError(`worker on ${host}: ${why}`);
    }
    checked.set(entry.id, null);
  }

  const slots = o.gpus?.length ? o.gpus.length * (o.trialsPerGpu ?? 1) : (o.workers ?? 1);
  const pools = new Map<ExecutorKind, Promise<TrialExecutor>>();
  const poolFor = (backend: string) => {
    const kind: ExecutorKind = NATIVE_BACKENDS.has(backend) ? 'process' : 'thread';
    let pool = pools.get(kind);
    if (!pool) {
      const devices = o.gpus?.length ? o.gpus.flatMap((g) => new Array<string>(o.trialsPerGpu ?? 1).fill(g)) : new Array<null>(slots).fill(null);
      pool = executors[kind]({ workers: slots, devices, trialModule: o.trialModule ?? defaultTrialModule(), log: o.log, config: undefined as never });
      pools.set(kind, pool);
    }
    return pool;
  };
  let slot = 0;

  const handedBack = new Set<string>();
  const processor = async (bullJob: Job, token?: string): Promise<JobResult> => {
    let job: TrialJob;
    try {
      job = parseJob(bullJob.data);
    } catch (e) {
      o.log(`job ${bullJob.id}: ${(e as Error).message}; failed`);
      throw new UnrecoverableError((e as Error).message);
    }
    if (!checked.has(job.campaign)) {
      const entry = (await campaigns()).find((c) => c.id === job.campaign);
      checked.set(job.campaign, entry ? checkCampaign(entry, o.dataDir, o.runsDir) : null);
    }
    const why = checked.get(job.campaign);
    if (why) {
      // A host reason, not the trial's: the job goes back to the queue for a worker that can run it, and the
      // campaign goes on (its trial is neither failed nor counted as an attempt).
      if (!handedBack.has(job.campaign)) o.log(`worker on ${host}: ${why}; its trials are left to other workers`);
      handedBack.add(job.campaign);
      await bullJob.moveToDelayed(Date.now() + HAND_BACK_MS, token);
      throw new DelayedError();
    }
    const worker = `${host}/${process.pid}/slot${slot++ % slots}`;
    const request = resolveRequest(job, { dataDir: o.dataDir, modelsDir: join(o.modelsDir, job.name), runDir: join(o.runsDir ?? 'runs', job.name) });
    const curves: EpochCurve[] = [];
    const abort = new AbortController();
    let beat = 0;
    const report = async () => {
      const progress: JobProgress = { worker, beat: beat++, curves };
      try {
        if (await redis.exists(cancelKey(bullJob.id!))) abort.abort(new Error('withdrawn by the coordinator'));
        await bullJob.updateProgress(progress);
      } catch (e) {
        // The job is gone (Redis flushed, the coordinator withdrew it): nobody will read this trial's result.
        if (/Missing key|does not exist/i.test((e as Error).message)) abort.abort(new Error('job no longer in Redis'));
      }
    };
    await report();
    const timer = setInterval(() => void report(), 1000);
    try {
      const pool = await poolFor(job.settings.backend);
      const outcome = await pool.run({ job, request }, { onEpoch: (c) => curves.push(c) }, abort.signal);
      if (outcome.cancelled) throw new UnrecoverableError(`trial ${job.index} stopped: ${outcome.cancelled}`);
      o.log(`trial ${job.index}${job.role === 'reference' ? ' (uniform reference)' : ''} of ${job.name} (attempt ${job.attempt}): ${outcome.result.status}${outcome.result.error ? ` (${outcome.result.error})` : ''}`);
      return { token: job.token, worker: `${host}/${process.pid}/${outcome.worker}`, result: outcome.result, inputError: outcome.inputError };
    } finally {
      clearInterval(timer);
    }
  };

  const lockDuration = o.lockMs ?? 30_000;
  const worker = new Worker(QUEUE_NAME, processor, {
    connection: redis.duplicate(),
    prefix: QUEUE_PREFIX,
    concurrency: slots,
    lockDuration,
    stalledInterval: lockDuration,
    maxStalledCount: 3,
  });
  worker.on('error', (e) => o.log(`queue: ${e.message.split('\n')[0]}`));
  o.log(`worker on ${host}: ${slots} slot(s) on ${target.shown}; campaigns: ${entries.map((e) => e.name).join(', ') || 'none yet'}`);
  await stop;
  o.log('stopping: waiting for running trials to finish');
  await worker.close();
  for (const pool of pools.values()) await (await pool).close();
  redis.disconnect();
}
