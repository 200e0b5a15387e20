/** The durable campaign store: one SQLite file per run directory, written by the coordinator alone, read by anyone. */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Complexity } from '../complexity/count.js';
import type { WidthConfig } from '../nets/types.js';
import type { EpochCurve, TrialResult } from '../training/types.js';
import { UserError } from '../util/errors.js';
import type { CampaignConfig, RoundRecord, TrialRecord, TrialRole, TrialState } from './types.js';

export const STORE_FILE = 'campaign.db';
const SCHEMA_VERSION = 3;

/*
 * The store contract (the coordinator is the only writer; anyone may read, also while it writes, thanks to WAL):
 *
 *   waiting ──start──▶ running ──finish──▶ complete | failed | pruned
 *      ▲                  │                              │
 *      └──release─────────┘         failed ──start──▶ running   (a retry, while attempts < max)
 *
 * - `start` issues a fresh attempt token and a lease; attempts counts started attempts.
 * - Every later write about that attempt (curves, heartbeat, finish, release) must present its token. A token that
 *   is not the trial's current one (a late result of an abandoned attempt) is refused, written to the `refused`
 *   table for the record, and changes nothing.
 * - `heartbeat` extends the lease. `expireLeases` fails running trials whose lease lapsed (their worker vanished);
 *   a failed trial with attempts left is retryable, so it runs again under a new token.
 * - `release` (Ctrl-C, a coordinator that died) returns a running trial to waiting without counting its attempt.
 * - complete and pruned are final. Any other change throws IllegalTransition: it is a bug, never a user error.
 * - Every write is its own transaction, so a kill -9 of the coordinator loses nothing already stored.
 */

/**
 * One row per trial; a round's trials share its space file. Trial indices are global across rounds so that
 * a trial's seed (derived from the campaign seed and its index) never repeats within a campaign.
 */
const TRIALS_TABLE = `
CREATE TABLE trials (
  idx INTEGER PRIMARY KEY,
  round INTEGER NOT NULL REFERENCES rounds(round),
  widths TEXT NOT NULL,
  seed INTEGER NOT NULL,
  flops INTEGER NOT NULL,
  params INTEGER NOT NULL,
  activations INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'failed', 'pruned')),
  attempts INTEGER NOT NULL DEFAULT 0,
  val_error REAL,
  test_error REAL,
  train_loss REAL,
  curves TEXT NOT NULL DEFAULT '[]',
  wall_seconds REAL,
  images_per_second REAL,
  backend TEXT,
  worker TEXT,
  error TEXT,
  started_at TEXT,
  finished_at TEXT,
  token TEXT,
  lease_until INTEGER,
  heartbeat_at TEXT,
  role TEXT NOT NULL DEFAULT 'sample' CHECK (role IN ('sample', 'reference'))
);
CREATE INDEX trials_state ON trials(state);
CREATE TABLE refused (
  at TEXT NOT NULL,
  idx INTEGER NOT NULL,
  token TEXT,
  what TEXT NOT NULL,
  reason TEXT NOT NULL
);
`;

/**
 * Each trial's init as its jobs carried it (inherit: the kept parent channels per group), written when an attempt is
 * dispatched. Its own table, created where missing, so stores of scratch campaigns need no migration.
 */
const TRIAL_INITS_TABLE = 'CREATE TABLE IF NOT EXISTS trial_inits (idx INTEGER PRIMARY KEY, init TEXT NOT NULL)';

const SCHEMA = `
CREATE TABLE campaign (
  id INTEGER PRIMARY KEY CHECK (id = 1),
  config TEXT NOT NULL
);
CREATE TABLE rounds (
  round INTEGER PRIMARY KEY,
  space_file TEXT NOT NULL,
  space TEXT NOT NULL,
  samples INTEGER NOT NULL,
  sample_seed INTEGER NOT NULL,
  sample_attempts INTEGER NOT NULL,
  acceptance_rate REAL NOT NULL,
  created_at TEXT NOT NULL
);
${TRIALS_TABLE}`;

/** Version 1 (states pending/running/complete/failed, no tokens) becomes the current version in one transaction; pending is waiting. */
function migrateV1(db: Database.Database): void {
  db.transaction(() => {
    db.exec('ALTER TABLE trials RENAME TO trials_v1; DROP INDEX IF EXISTS trials_state;');
    db.exec(TRIALS_TABLE);
    db.exec(`INSERT INTO trials (idx, round, widths, seed, flops, params, activations, state, attempts, val_error, test_error,
        train_loss, curves, wall_seconds, images_per_second, backend, worker, error, started_at, finished_at)
      SELECT idx, round, widths, seed, flops, params, activations,
        CASE state WHEN 'pending' THEN 'waiting' ELSE state END, attempts, val_error, test_error,
        train_loss, curves, wall_seconds, images_per_second, backend, worker, error, started_at, finished_at FROM trials_v1`);
    db.exec('DROP TABLE trials_v1');
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

/** Version 2 had no trial roles: every trial it holds is a sample. */
function migrateV2(db: Database.Database): void {
  db.transaction(() => {
    db.exec(`ALTER TABLE trials ADD COLUMN role TEXT NOT NULL DEFAULT 'sample' CHECK (role IN ('sample', 'reference'))`);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
}

interface TrialRow {
  idx: number;
  round: number;
  widths: string;
  seed: number;
  flops: number;
  params: number;
  activations: number;
  state: TrialState | 'pending';
  attempts: number;
  val_error: number | null;
  test_error: number | null;
  train_loss: number | null;
  curves: string;
  wall_seconds: number | null;
  images_per_second: number | null;
  backend: string | null;
  worker: string | null;
  error: string | null;
  started_at: string | null;
  finished_at: string | null;
  token?: string | null;
  lease_until?: number | null;
  /** Absent in stores before version 3, read without migrating. */
  role?: TrialRole;
}

function toRecord(r: TrialRow): TrialRecord {
  return {
    index: r.idx,
    round: r.round,
    role: r.role ?? 'sample',
    widths: JSON.parse(r.widths) as WidthConfig,
    seed: r.seed,
    complexity: { flops: r.flops, params: r.params, activations: r.activations },
    // A version-1 store read without migrating (status on a run nobody resumed yet) says pending for waiting.
    state: r.state === 'pending' ? 'waiting' : r.state,
    attempts: r.attempts,
    valError: r.val_error,
    testError: r.test_error,
    trainLoss: r.train_loss,
    curves: JSON.parse(r.curves) as EpochCurve[],
    wallSeconds: r.wall_seconds,
    imagesPerSecond: r.images_per_second,
    backend: r.backend,
    worker: r.worker,
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
  };
}

/** A trial as sampled, before it has been trained. */
export interface NewTrial {
  index: number;
  widths: WidthConfig;
  seed: number;
  complexity: Complexity;
  /** Default 'sample'. */
  role?: TrialRole;
}

/** One started attempt of a trial: what an executor must hand back with its result. */
export interface Attempt {
  index: number;
  round: number;
  /** 1 for the first attempt. */
  attempt: number;
  token: string;
}

export interface StateCounts {
  waiting: number;
  running: number;
  complete: number;
  failed: number;
  pruned: number;
  total: number;
}

/** A state change the contract does not allow: a bug in the caller. */
export class IllegalTransition extends Error {
  override name = 'IllegalTransition';
}

/** A write from an attempt that is no longer the trial's current one; refused and recorded, nothing changed. */
export interface Refusal {
  at: string;
  index: number;
  token: string | null;
  what: string;
  reason: string;
}

/** Read access: what `status`, export and analysis need, with no training code behind it. */
export class CampaignReader {
  constructor(
    readonly dir: string,
    protected readonly db: Database.Database,
  ) {}

  config(): CampaignConfig {
    const row = this.db.prepare('SELECT config FROM campaign WHERE id = 1').get() as { config: string } | undefined;
    if (!row) throw new UserError(`${join(this.dir, STORE_FILE)}: holds no campaign configuration`);
    return JSON.parse(row.config) as CampaignConfig;
  }

  rounds(): RoundRecord[] {
    const rows = this.db.prepare('SELECT * FROM rounds ORDER BY round').all() as Array<Record<string, unknown>>;
    return rows.map((r) => ({
      round: r.round as number,
      spaceFile: r.space_file as string,
      space: JSON.parse(r.space as string) as unknown,
      samples: r.samples as number,
      sampleSeed: r.sample_seed as number,
      sampleAttempts: r.sample_attempts as number,
      acceptanceRate: r.acceptance_rate as number,
      createdAt: r.created_at as string,
    }));
  }

  /** Every trial in index order; `round`, `state` and `role` narrow them. */
  trials(opts: { round?: number; state?: TrialState; role?: TrialRole } = {}): TrialRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.round !== undefined) (where.push('round = ?'), args.push(opts.round));
    if (opts.state !== undefined) (where.push('state = ?'), args.push(opts.state));
    const sql = `SELECT * FROM trials ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY idx`;
    const records = (this.db.prepare(sql).all(...args) as TrialRow[]).map(toRecord);
    // Filtered here rather than in SQL: a store before version 3, read without migrating, has no role column.
    return opts.role === undefined ? records : records.filter((t) => t.role === opts.role);
  }

  /**
   * SQLite's change counter for this connection: it moves when another connection commits, so a reader can tell
   * whether anything changed without reading a row.
   */
  changeCounter(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  /** The given trials (by the primary key, no scan). */
  trialsAt(indices: readonly number[]): TrialRecord[] {
    if (!indices.length) return [];
    const rows = this.db.prepare('SELECT * FROM trials WHERE idx IN (SELECT value FROM json_each(?)) ORDER BY idx').all(JSON.stringify(indices)) as TrialRow[];
    return rows.map(toRecord);
  }

  /** Trials with index >= `index` (those added by later rounds), by the primary key. */
  trialsFrom(index: number): TrialRecord[] {
    return (this.db.prepare('SELECT * FROM trials WHERE idx >= ? ORDER BY idx').all(index) as TrialRow[]).map(toRecord);
  }

  counts(): StateCounts {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM trials GROUP BY state').all() as Array<{ state: TrialState | 'pending'; n: number }>;
    const counts: StateCounts = { waiting: 0, running: 0, complete: 0, failed: 0, pruned: 0, total: 0 };
    for (const { state, n } of rows) (counts[state === 'pending' ? 'waiting' : state] += n), (counts.total += n);
    return counts;
  }

  /** Each dispatched trial's init (JobInit as plain JSON: inherit carries the kept parent channels), by trial index. */
  trialInits(): Map<number, unknown> {
    const has = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trial_inits'`).get();
    if (!has) return new Map();
    const rows = this.db.prepare('SELECT idx, init FROM trial_inits ORDER BY idx').all() as Array<{ idx: number; init: string }>;
    return new Map(rows.map((r) => [r.idx, JSON.parse(r.init) as unknown]));
  }

  /** Writes refused because they came from a stale attempt, oldest first. */
  refusals(): Refusal[] {
    const has = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'refused'`).get();
    if (!has) return [];
    const rows = this.db.prepare('SELECT * FROM refused ORDER BY rowid').all() as Array<{ at: string; idx: number; token: string | null; what: string; reason: string }>;
    return rows.map((r) => ({ at: r.at, index: r.idx, token: r.token, what: r.what, reason: r.reason }));
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Write access for the coordinator, under the contract above. */
export class CampaignStore extends CampaignReader {
  private readonly stmts;
  /** Called with every refused stale write (the coordinator logs them). */
  onRefused: (r: Refusal) => void = () => {};

  constructor(dir: string, db: Database.Database) {
    super(dir, db);
    this.stmts = {
      insertTrial: db.prepare(
        `INSERT INTO trials (idx, round, role, widths, seed, flops, params, activations, state)
         VALUES (@index, @round, @role, @widths, @seed, @flops, @params, @activations, 'waiting')`,
      ),
      start: db.prepare(
        `UPDATE trials SET state = 'running', attempts = attempts + 1, worker = @worker, started_at = @now, finished_at = NULL,
           curves = '[]', error = NULL, token = @token, lease_until = @leaseUntil, heartbeat_at = @now
         WHERE idx = @index AND (state = 'waiting' OR (state = 'failed' AND attempts < @maxAttempts))`,
      ),
      curves: db.prepare(`UPDATE trials SET curves = @curves, lease_until = MAX(lease_until, @leaseUntil), heartbeat_at = @now
         WHERE idx = @index AND state = 'running' AND token = @token`),
      heartbeat: db.prepare(`UPDATE trials SET lease_until = MAX(lease_until, @leaseUntil), heartbeat_at = @now,
           worker = COALESCE(@worker, worker) WHERE idx = @index AND state = 'running' AND token = @token`),
      finish: db.prepare(
        `UPDATE trials SET state = @state, val_error = @valError, test_error = @testError, train_loss = @trainLoss,
           curves = @curves, wall_seconds = @wallSeconds, images_per_second = @imagesPerSecond, backend = @backend,
           worker = @worker, error = @error, finished_at = @now, lease_until = NULL
         WHERE idx = @index AND state = 'running' AND token = @token`,
      ),
      release: db.prepare(
        `UPDATE trials SET state = 'waiting', attempts = MAX(attempts - 1, 0), token = NULL, lease_until = NULL
         WHERE idx = @index AND state = 'running' AND token = @token`,
      ),
      refuse: db.prepare('INSERT INTO refused (at, idx, token, what, reason) VALUES (?, ?, ?, ?, ?)'),
      get: db.prepare('SELECT * FROM trials WHERE idx = ?'),
    };
  }

  /** Records the init a trial's job carries (the same for every attempt: it derives from cached scores and the widths). */
  recordInit(index: number, init: unknown): void {
    this.db.exec(TRIAL_INITS_TABLE);
    this.db.prepare('INSERT OR REPLACE INTO trial_inits (idx, init) VALUES (?, ?)').run(index, JSON.stringify(init));
  }

  /** Stores the configuration once; a campaign's configuration never changes afterwards. */
  init(config: CampaignConfig): void {
    this.db.prepare('INSERT INTO campaign (id, config) VALUES (1, ?)').run(JSON.stringify(config));
  }

  /** Records a round and its sampled trials in one transaction: either the whole round exists or none of it. */
  addRound(round: RoundRecord, trials: NewTrial[]): void {
    this.db.transaction(() => {
      this.db
        .prepare(
          `INSERT INTO rounds (round, space_file, space, samples, sample_seed, sample_attempts, acceptance_rate, created_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
        )
        .run(
          round.round,
          round.spaceFile,
          JSON.stringify(round.space),
          round.samples,
          round.sampleSeed,
          round.sampleAttempts,
          round.acceptanceRate,
          round.createdAt,
        );
      for (const t of trials) {
        this.stmts.insertTrial.run({
          index: t.index,
          round: round.round,
          role: t.role ?? 'sample',
          widths: JSON.stringify(t.widths),
          seed: t.seed,
          ...t.complexity,
        });
      }
    })();
  }

  /**
   * Trials left 'running' belong to a coordinator that died (only one runs at a time): they go back to waiting,
   * and the attempt they never finished does not count against --max-attempts.
   */
  recoverInterrupted(): number {
    return this.db
      .prepare(`UPDATE trials SET state = 'waiting', attempts = MAX(attempts - 1, 0), token = NULL, lease_until = NULL WHERE state = 'running'`)
      .run().changes;
  }

  /**
   * Trials to train: waiting ones, and failed ones with attempts left; reference trials first (so that a campaign
   * stopped early still has its reference), then in index order.
   */
  runnable(maxAttempts: number): TrialRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM trials WHERE state = 'waiting' OR (state = 'failed' AND attempts < ?) ORDER BY role = 'reference' DESC, idx`)
      .all(maxAttempts) as TrialRow[];
    return rows.map(toRecord);
  }

  /** Running trials with their current attempt (a durable executor may still hold them after a coordinator restart). */
  runningAttempts(): Array<{ trial: TrialRecord; attempt: Attempt }> {
    const rows = this.db.prepare(`SELECT * FROM trials WHERE state = 'running' ORDER BY idx`).all() as TrialRow[];
    return rows.map((r) => ({ trial: toRecord(r), attempt: { index: r.idx, round: r.round, attempt: r.attempts, token: r.token ?? '' } }));
  }

  /** waiting (or failed with attempts left) → running: issues the attempt's token and its first lease. */
  start(index: number, opts: { worker?: string | null; leaseMs: number; maxAttempts: number }): Attempt {
    const row = this.row(index);
    const token = `${row.attempts + 1}.${randomBytes(6).toString('hex')}`;
    const now = Date.now();
    const r = this.stmts.start.run({
      index, worker: opts.worker ?? null, now: new Date(now).toISOString(), token, leaseUntil: now + opts.leaseMs, maxAttempts: opts.maxAttempts,
    });
    if (r.changes === 0) {
      const why = row.state === 'failed' ? `failed with ${row.attempts} of ${opts.maxAttempts} attempts used` : row.state;
      throw new IllegalTransition(`trial ${index}: cannot start, it is ${why}`);
    }
    return { index, round: row.round, attempt: row.attempts + 1, token };
  }

  /** Per-epoch curves of the current attempt; they also count as a heartbeat. */
  recordCurves(a: Attempt, curves: EpochCurve[], leaseMs: number): boolean {
    const now = Date.now();
    const r = this.stmts.curves.run({ index: a.index, token: a.token, curves: JSON.stringify(curves), leaseUntil: now + leaseMs, now: new Date(now).toISOString() });
    return r.changes > 0 || this.refuse(a, 'curves');
  }

  /** Extends the attempt's lease to now + leaseMs (a lease never shrinks). */
  heartbeat(a: Attempt, leaseMs: number, worker?: string): boolean {
    const now = Date.now();
    const r = this.stmts.heartbeat.run({ index: a.index, token: a.token, leaseUntil: now + leaseMs, now: new Date(now).toISOString(), worker: worker ?? null });
    return r.changes > 0 || this.refuse(a, 'heartbeat');
  }

  /** running → complete | failed | pruned, for the current attempt only; false (refused, recorded) for a stale one. */
  finish(a: Attempt, result: TrialResult & { pruned?: boolean }, worker: string): boolean {
    const state: TrialState = result.pruned ? 'pruned' : result.status;
    const r = this.stmts.finish.run({
      index: a.index,
      token: a.token,
      state,
      valError: finiteOrNull(result.valError),
      testError: finiteOrNull(result.testError),
      trainLoss: finiteOrNull(result.trainLoss),
      curves: JSON.stringify(result.curves ?? []),
      wallSeconds: result.wallSeconds ?? null,
      imagesPerSecond: finiteOrNull(result.imagesPerSecond),
      backend: result.backend ?? null,
      worker,
      error: result.status === 'failed' ? (result.error ?? 'failed without a reason') : null,
      now: new Date().toISOString(),
    });
    return r.changes > 0 || this.refuse(a, 'result');
  }

  /** running → waiting (stopped before it finished: Ctrl-C, cancel); the attempt does not count. */
  release(a: Attempt): boolean {
    const r = this.stmts.release.run({ index: a.index, token: a.token });
    return r.changes > 0 || this.refuse(a, 'release');
  }

  /** running → failed for every lease that lapsed before `now` (ms): their workers stopped reporting. */
  expireLeases(now = Date.now()): Attempt[] {
    const rows = this.db.prepare(`SELECT * FROM trials WHERE state = 'running' AND lease_until < ?`).all(now) as TrialRow[];
    const expired: Attempt[] = [];
    for (const r of rows) {
      const a = { index: r.idx, round: r.round, attempt: r.attempts, token: r.token ?? '' };
      const seconds = r.lease_until ? Math.round((now - r.lease_until) / 1000) : 0;
      const ok = this.finish(a, { status: 'failed', error: `lease expired: no heartbeat from ${r.worker ?? 'its worker'} (${seconds}s past the lease)`, curves: [], wallSeconds: 0, backend: r.backend ?? '' }, r.worker ?? '');
      if (ok) expired.push(a);
    }
    return expired;
  }

  nextTrialIndex(): number {
    const row = this.db.prepare('SELECT MAX(idx) AS m FROM trials').get() as { m: number | null };
    return row.m === null ? 0 : row.m + 1;
  }

  private row(index: number): TrialRow {
    const row = this.stmts.get.get(index) as TrialRow | undefined;
    if (!row) throw new IllegalTransition(`trial ${index} does not exist`);
    return row;
  }

  /** A write that did not apply: it came from an attempt that is not (or no longer) running. Recorded, never applied. */
  private refuse(a: Attempt, what: string): false {
    const row = this.row(a.index);
    const reason =
      row.token === a.token
        ? `attempt ${a.token} already ended; the trial is ${row.state}`
        : `attempt ${a.token} is stale; the trial is ${row.state}${row.token ? ` under attempt ${row.token}` : ''}`;
    const refusal: Refusal = { at: new Date().toISOString(), index: a.index, token: a.token, what, reason };
    this.stmts.refuse.run(refusal.at, refusal.index, refusal.token, refusal.what, refusal.reason);
    this.onRefused(refusal);
    return false;
  }
}

function finiteOrNull(x: number | undefined): number | null {
  return x !== undefined && Number.isFinite(x) ? x : null;
}

export function storePath(dir: string): string {
  return join(dir, STORE_FILE);
}

export function isCampaignDir(dir: string): boolean {
  return existsSync(storePath(dir));
}

function openDb(dir: string, readonly: boolean): Database.Database {
  const path = storePath(dir);
  if (!existsSync(path)) throw new UserError(`${dir} is not a campaign directory (no ${STORE_FILE})`);
  let db: Database.Database;
  try {
    db = new Database(path, { readonly, fileMustExist: true });
    const version = db.pragma('user_version', { simple: true }) as number;
    // A reader copes with versions 1 and 2 as they are; the coordinator migrates them before writing.
    if (version === 1 && !readonly) migrateV1(db);
    else if (version === 2 && !readonly) migrateV2(db);
    else if (version !== SCHEMA_VERSION && !((version === 1 || version === 2) && readonly)) {
      db.close();
      throw new UserError(`${path}: store schema version ${version}, this prunespace reads versions 1 to ${SCHEMA_VERSION}; use the prunespace that wrote it`);
    }
  } catch (e) {
    if (e instanceof UserError) throw e;
    throw new UserError(`${path}: cannot open the campaign store (${(e as Error).message})`);
  }
  // A reader waits for the coordinator's short write transactions instead of failing.
  db.pragma('busy_timeout = 5000');
  return db;
}

/** Opens an existing campaign for reading; safe while a coordinator writes it (WAL). */
export function openCampaign(dir: string, opts: { readonly: true }): CampaignReader;
export function openCampaign(dir: string, opts?: { readonly?: false }): CampaignStore;
export function openCampaign(dir: string, opts: { readonly?: boolean } = {}): CampaignReader | CampaignStore {
  const db = openDb(dir, opts.readonly ?? false);
  if (opts.readonly) return new CampaignReader(dir, db);
  db.pragma('synchronous = NORMAL');
  return new CampaignStore(dir, db);
}

/**
 * Creates a campaign store with its configuration and first round. It is built under a temporary name and
 * renamed into place, so campaign.db either holds a whole campaign or does not exist; an existing one is never touched.
 */
export function createCampaignStore(dir: string, config: CampaignConfig, round: RoundRecord, trials: NewTrial[]): CampaignStore {
  const path = storePath(dir);
  if (existsSync(path)) throw new UserError(`${path} already exists; refusing to overwrite a campaign`);
  const tmp = `${path}.tmp-${process.pid}`;
  rmSync(tmp, { force: true });
  const db = new Database(tmp);
  db.pragma('journal_mode = WAL');
  db.transaction(() => {
    db.exec(SCHEMA);
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  })();
  const draft = new CampaignStore(dir, db);
  db.transaction(() => {
    draft.init(config);
    draft.addRound(round, trials);
  })();
  db.close();
  if (existsSync(path)) {
    rmSync(tmp, { force: true });
    throw new UserError(`${path} already exists; refusing to overwrite a campaign`);
  }
  renameSync(tmp, path);
  return openCampaign(dir);
}
