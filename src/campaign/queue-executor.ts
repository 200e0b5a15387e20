/**
 * The BullMQ executor on the coordinator's side: each attempt is a job whose id derives from campaign, round,
 * trial and attempt (adding it again is a no-op). The coordinator watches its jobs, passes heartbeats and curves
 * on, and turns the job's end into an outcome. A job that vanished (Redis restarted without persistence, FLUSHALL)
 * is added again under the same id, so the store, not Redis, decides what is done.
 */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { crashedResult, abortReason, type ExecutorOptions, type TrialExecutor, type TrialHooks, type TrialOutcome, type TrialTask } from './executor.js';
import { campaignId, jobId } from './job.js';
import { PARENT_DIR } from './parent.js';
import { CAMPAIGNS_KEY, QUEUE_NAME, QUEUE_PREFIX, cancelKey, connectQueue, parseQueueUrl, type CampaignEntry, type JobProgress, type JobResult } from './queue.js';

const POLL_MS = Number(process.env.PRUNESPACE_QUEUE_POLL_MS ?? 500);
/** How often a job that Redis still holds renews its trial's lease when no worker heartbeat came. */
const KEEPALIVE_MS = 5000;

export class QueueExecutor implements TrialExecutor {
  readonly kind = 'queue' as const;
  readonly durable = true;
  private closed = false;
  private redisDown = false;

  private constructor(
    readonly slots: number,
    private readonly queue: Queue,
    private readonly redis: Redis,
    private readonly log: (line: string) => void,
    private readonly campaign: string,
  ) {}

  static async open(o: ExecutorOptions): Promise<QueueExecutor> {
    const target = parseQueueUrl(o.queue!.url, { insecure: o.queue!.insecure });
    const redis = await connectQueue(target);
    redis.on('error', () => {}); // reconnects on its own; the poll loop reports outages
    const queue = new Queue(QUEUE_NAME, { connection: redis, prefix: QUEUE_PREFIX });
    queue.on('error', () => {});
    await queue.waitUntilReady();
    const entry: CampaignEntry = {
      id: campaignId(o.config),
      name: o.config.name,
      dataset: o.config.settings.data.name,
      backend: o.config.backend,
      ...(o.config.init && o.config.init.mode !== 'scratch' ? { parent: PARENT_DIR } : {}),
      updatedAt: new Date().toISOString(),
    };
    await redis.hset(CAMPAIGNS_KEY, entry.id, JSON.stringify(entry));
    o.log(`queue ${target.shown}: campaign ${entry.id} (${entry.name}); start workers with: prunespace worker --queue URL`);
    return new QueueExecutor(o.workers, queue, redis, o.log, entry.id);
  }

  private async enqueue(task: TrialTask): Promise<void> {
    // Job-level retries stay off: retries are the coordinator's (a new attempt, a new token, a new job id).
    await this.queue.add('trial', task.job, { jobId: jobId(task.job), attempts: 1, removeOnComplete: false, removeOnFail: false });
  }

  async run(task: TrialTask, hooks: TrialHooks, signal: AbortSignal): Promise<TrialOutcome> {
    const id = jobId(task.job);
    const started = performance.now();
    const backend = task.job.settings.backend;
    let beat = -1;
    let lastBeat = 0;
    let curvesSeen = 0;
    let added = false;
    while (!this.closed) {
      if (signal.aborted) {
        await this.withdraw(id);
        return { result: crashedResult(`cancelled: ${abortReason(signal)}`, started, backend), worker: 'queue', cancelled: abortReason(signal) };
      }
      try {
        const job = await this.queue.getJob(id);
        if (this.redisDown) (this.redisDown = false), this.log('Redis is reachable again');
        if (!job) {
          if (added) this.log(`trial ${task.job.index}: job ${id} is gone from Redis (restart or flush); enqueued again`);
          await this.enqueue(task);
          added = true;
        } else {
          added = true;
          // One read per job and poll: the job hash tells finished (completed or failed) from unfinished.
          if (job.finishedOn && !job.failedReason) {
            const outcome = await this.collect(job.id!, job.returnvalue as unknown, task);
            if (outcome) return outcome;
            added = false;
            continue;
          }
          if (job.finishedOn) {
            await job.remove().catch(() => {});
            return { result: crashedResult(`worker failed the job: ${job.failedReason}`, started, backend), worker: 'queue' };
          }
          const progress = job.progress as Partial<JobProgress> | number;
          if (typeof progress === 'object' && progress.beat !== undefined && progress.beat !== beat) {
            beat = progress.beat;
            lastBeat = Date.now();
            hooks.onHeartbeat?.(progress.worker ?? 'unknown');
            for (const c of (progress.curves ?? []).slice(curvesSeen)) hooks.onEpoch(c);
            curvesSeen = Math.max(curvesSeen, progress.curves?.length ?? 0);
          } else if (Date.now() - lastBeat > KEEPALIVE_MS) {
            // Waiting for a free worker, or for BullMQ to hand a stalled job to another one, is no sign that the
            // trial is lost: while Redis holds the job its lease is kept (a dead worker is BullMQ's to detect).
            lastBeat = Date.now();
            hooks.onHeartbeat?.('');
          }
        }
      } catch (e) {
        if (!this.redisDown) this.log(`Redis unreachable (${(e as Error).message.split('\n')[0]}); retrying`);
        this.redisDown = true;
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
    return { result: crashedResult('coordinator closed', started, backend), worker: 'queue', cancelled: 'coordinator closed' };
  }

  /**
   * The outcome of a completed job, or null when the job holds no result for this attempt (a worker finished it
   * across a flush or restart): then it is removed and the same attempt enqueued again; the store keeps one result.
   */
  private async collect(id: string, value: unknown, task: TrialTask): Promise<TrialOutcome | null> {
    const r = value as Partial<JobResult> | null;
    await this.queue.remove(id).catch(() => 0);
    if (!r || typeof r !== 'object' || !r.result || typeof r.result.status !== 'string' || r.token !== task.job.token) {
      this.log(`trial ${task.job.index}: job ${id} completed without a result for attempt ${task.job.token}; enqueued again`);
      return null;
    }
    return { result: r.result, worker: r.worker ?? 'queue', inputError: r.inputError };
  }

  /** Takes a job back: removed while it waits, or flagged so that the worker training it stops. */
  private async withdraw(id: string): Promise<void> {
    try {
      await this.redis.set(cancelKey(id), '1', 'EX', 3600);
      await this.queue.remove(id);
    } catch {
      // Redis unreachable: the job's result, if it ever comes, is refused by its stale token.
    }
  }

  async retire(): Promise<void> {
    await this.redis.hdel(CAMPAIGNS_KEY, this.campaign).catch(() => 0);
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.queue.close().catch(() => {});
    this.redis.disconnect();
  }
}
