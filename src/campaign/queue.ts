/** What the coordinator and queue workers share: the Redis URL rules, the connection check, and key names. */
import { Redis, type RedisOptions } from 'ioredis';
import { isIP } from 'node:net';
import { UserError } from '../util/errors.js';

/** One queue for every campaign on a Redis; job ids carry the campaign id. */
export const QUEUE_NAME = 'trials';
export const QUEUE_PREFIX = 'prunespace';
/** Hash: campaign id → what a worker needs to check before taking its work (dataset, engine). */
export const CAMPAIGNS_KEY = `${QUEUE_PREFIX}:campaigns`;
/** A job the coordinator withdrew while a worker ran it: the worker stops that trial. */
export const cancelKey = (jobId: string) => `${QUEUE_PREFIX}:cancel:${jobId}`;

/** A campaign's entry in CAMPAIGNS_KEY. */
export interface CampaignEntry {
  id: string;
  name: string;
  dataset: string;
  backend: string;
  /** The campaign's parent, relative to its run directory (inherit and distill campaigns): workers must have it. */
  parent?: string;
  updatedAt: string;
}

/** What a trial job's result carries back (the job's return value). */
export interface JobResult {
  token: string;
  worker: string;
  result: import('../training/types.js').TrialResult;
  inputError?: boolean;
}

/** What a worker reports while it trains (the job's progress). */
export interface JobProgress {
  worker: string;
  beat: number;
  curves: import('../training/types.js').EpochCurve[];
}

export interface QueueTarget {
  /** The URL with any password hidden, for messages. */
  shown: string;
  options: RedisOptions;
}

function loopback(host: string): boolean {
  const h = host.replace(/^\[|\]$/g, '');
  return h === 'localhost' || h === '::1' || (isIP(h) === 4 && h.startsWith('127.'));
}

/**
 * Parses redis://[user:password@]HOST:PORT[/DB] or rediss://… (TLS). A password-less redis:// to a host off
 * loopback is refused unless `insecure`: an open Redis runs whatever the network sends it.
 */
export function parseQueueUrl(url: string, opts: { insecure?: boolean } = {}): QueueTarget {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UserError(`--queue ${url}: not a URL; expected redis://[user:password@]HOST:PORT[/DB] or rediss://…`);
  }
  if (u.protocol !== 'redis:' && u.protocol !== 'rediss:') throw new UserError(`--queue ${url}: scheme must be redis:// or rediss://, not ${u.protocol}//`);
  if (!u.hostname) throw new UserError(`--queue ${url}: no host`);
  const port = u.port ? Number(u.port) : 6379;
  const dbPart = u.pathname.replace(/^\//, '');
  if (dbPart && !/^\d+$/.test(dbPart)) throw new UserError(`--queue ${url}: the database must be a number (/0, /1…), got /${dbPart}`);
  const password = decodeURIComponent(u.password);
  const username = decodeURIComponent(u.username);
  const tls = u.protocol === 'rediss:';
  const shown = `${u.protocol}//${username ? `${username}${password ? ':***' : ''}@` : password ? ':***@' : ''}${u.host}${dbPart ? `/${dbPart}` : ''}`;
  if (!password && !tls && !loopback(u.hostname) && !opts.insecure) {
    throw new UserError(`--queue ${shown}: a redis:// URL without a password to a host off loopback is refused; add a password, use rediss://, or pass --insecure`);
  }
  return {
    shown,
    options: {
      host: u.hostname.replace(/^\[|\]$/g, ''),
      port,
      ...(username ? { username } : {}),
      ...(password ? { password } : {}),
      db: dbPart ? Number(dbPart) : 0,
      ...(tls ? { tls: { servername: u.hostname } } : {}),
      // BullMQ's blocking commands need this; reconnects are retried for ever (a Redis restart is survived).
      maxRetriesPerRequest: null,
    },
  };
}

/**
 * Opens a connection and proves it works (PING) within `timeoutMs`, or throws one UserError line: unreachable,
 * wrong password, not Redis. Nothing is written before this succeeds.
 */
export async function connectQueue(target: QueueTarget, timeoutMs = 5000): Promise<Redis> {
  const redis = new Redis({ ...target.options, lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, enableOfflineQueue: false });
  // The first error names the cause (WRONGPASS, ECONNREFUSED); the rejected promise often only says the connection closed.
  let first: Error | null = null;
  redis.on('error', (e: Error) => (first ??= e));
  try {
    await Promise.race([
      redis.connect().then(() => redis.ping()),
      new Promise((_, reject) => setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000}s`)), timeoutMs).unref()),
    ]);
  } catch (e) {
    redis.disconnect();
    const msg = (first ?? (e as Error)).message.split('\n')[0];
    if (/WRONGPASS|NOAUTH|invalid password|invalid username/i.test(msg)) throw new UserError(`--queue ${target.shown}: Redis refused the credentials (${msg})`);
    throw new UserError(`--queue ${target.shown}: cannot reach Redis (${msg})`);
  }
  redis.disconnect();
  // The connection BullMQ keeps: it reconnects after a Redis restart instead of failing.
  return new Redis(target.options);
}
