/** The durable campaign store: one SQLite file per run directory, written by the coordinator alone, read by anyone. */
import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Complexity } from '../complexity/count.js';
import type { WidthConfig } from '../nets/types.js';
import type { EpochCurve, TrialMetrics, TrialResult } from '../training/types.js';
import { UserError } from '../util/errors.js';
import type { CampaignConfig, RoundRecord, RungResult, TrialRecord, TrialRole, TrialState } from './types.js';

export const STORE_FILE = 'campaign.db';
const SCHEMA_VERSION = 4;

/*
 * The store contract (the coordinator is the only writer; anyone may read, also while it writes, thanks to WAL):
 *
 *   waiting ──start──▶ running ──finish──▶ complete | failed | pruned | paused
 *      ▲                  │                              │
 *      └──release─────────┘         failed ──start──▶ running   (a retry, while attempts < max)
 *
 *   paused ──promote──▶ waiting (the next rung)        paused ──prune──▶ pruned
 *
 * - `start` issues a fresh attempt token and a lease; attempts counts started attempts.
 * - Every later write about that attempt (curves, heartbeat, finish, release) must present its token. A token that
 *   is not the trial's current one (a late result of an abandoned attempt) is refused, written to the `refused`
 *   table for the record, and changes nothing.
 * - `heartbeat` extends the lease. `expireLeases` fails running trials whose lease lapsed (their worker vanished);
 *   a failed trial with attempts left is retryable, so it runs again under a new token.
 * - `release` (Ctrl-C, a coordinator that died) returns a running trial to waiting without counting its attempt.
 * - Rung campaigns: a candidate that finishes a rung below the top is paused with that rung's result appended to its
 *   rung results; the scheduler (src/campaign/rungs.ts), reading the store alone, promotes it (waiting, its rung
 *   raised by one, its attempts counted afresh: the next attempt trains the next rung from its checkpoint) or prunes
 *   it. A failed attempt keeps the rung results already earned, and a retry trains the same rung again.
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
  state TEXT NOT NULL CHECK (state IN ('waiting', 'running', 'complete', 'failed', 'pruned', 'paused')),
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
  role TEXT NOT NULL DEFAULT 'sample' CHECK (role IN ('sample', 'reference', 'finalist')),
  rung INTEGER NOT NULL DEFAULT 0,
  rung_results TEXT NOT NULL DEFAULT '[]',
  -- Curves of the rungs already finished; curves holds the current attempt's (TrialRecord.curves is both).
  rung_curves TEXT NOT NULL DEFAULT '[]',
  finalist_of INTEGER,
  seed_index INTEGER
);
CREATE INDEX trials_state ON trials(state);
CREATE TABLE IF NOT EXISTS refused (
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

/**
 * Each trial's side metrics (TrialMetrics as JSON: a label-free trial's labelled error, teacher agreement and real
 * widths), written with its result. Its own table, created where missing, as trial_inits.
 */
const TRIAL_METRICS_TABLE = 'CREATE TABLE IF NOT EXISTS trial_metrics (idx INTEGER PRIMARY KEY, metrics TEXT NOT NULL)';
/** Measured batch-1 latency per trial (`search --measure-latency`): its own table, created where missing, as trial_inits. */
const TRIAL_LATENCY_TABLE = 'CREATE TABLE IF NOT EXISTS trial_latency (idx INTEGER PRIMARY KEY, latency_ms REAL NOT NULL, target TEXT NOT NULL)';
/** Latency regimes: each trial's latency as the predictor it was sampled against gave it, written with the trial. */
const TRIAL_PREDICTED_LATENCY_TABLE = 'CREATE TABLE IF NOT EXISTS trial_predicted_latency (idx INTEGER PRIMARY KEY, predicted_ms REAL NOT NULL)';

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

/** Columns every version's trials table has, copied as they are by a migration. */
const V1_COLUMNS = 'idx, round, widths, seed, flops, params, activations, attempts, val_error, test_error, train_loss, curves, wall_seconds, images_per_second, backend, worker, error, started_at, finished_at';

/**
 * Rebuilds an older trials table as the current one in one transaction (SQLite cannot change CHECK constraints in
 * place). Version 1's pending is waiting; version 1 had no attempt tokens, version 2 no roles; before version 4 there
 * were no rungs (every trial rung 0, its rung results derived on reading) and reference seeds were numbered in index order.
 */
function migrate(db: Database.Database, version: number): void {
  db.transaction(() => {
    db.exec('ALTER TABLE trials RENAME TO trials_old; DROP INDEX IF EXISTS trials_state;');
    db.exec(TRIALS_TABLE);
    const tokens = version >= 2 ? ', token, lease_until, heartbeat_at' : '';
    const role = version >= 3 ? ', role' : '';
    db.exec(`INSERT INTO trials (${V1_COLUMNS}, state${tokens}${role})
      SELECT ${V1_COLUMNS}, CASE state WHEN 'pending' THEN 'waiting' ELSE state END${tokens}${role} FROM trials_old`);
    db.exec('DROP TABLE trials_old');
    db.exec(`UPDATE trials SET seed_index = (SELECT COUNT(*) FROM trials r WHERE r.role = 'reference' AND r.idx < trials.idx) WHERE role = 'reference'`);
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
  /** Absent in stores before version 4, read without migrating. */
  rung?: number;
  rung_results?: string;
  rung_curves?: string;
  finalist_of?: number | null;
  seed_index?: number | null;
}

/**
 * A trial's rung results. A trial stored without any (a flat campaign before version 4) but complete has one: rung 0,
 * its final errors, its epochs; images 0, as that store never counted them.
 */
function rungResultsOf(r: TrialRow): RungResult[] {
  const stored = JSON.parse(r.rung_results ?? '[]') as RungResult[];
  if (stored.length || r.state !== 'complete' || r.val_error === null) return stored;
  const epochs = (JSON.parse(r.curves) as EpochCurve[]).length;
  return [{ rung: r.rung ?? 0, epochs, valError: r.val_error, testError: r.test_error, trainLoss: r.train_loss, images: 0 }];
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
    curves: [...(JSON.parse(r.rung_curves ?? '[]') as EpochCurve[]), ...(JSON.parse(r.curves) as EpochCurve[])],
    wallSeconds: r.wall_seconds,
    imagesPerSecond: r.images_per_second,
    backend: r.backend,
    worker: r.worker,
    error: r.error,
    startedAt: r.started_at,
    finishedAt: r.finished_at,
    rung: r.rung ?? 0,
    rungResults: rungResultsOf(r),
    ...(r.finalist_of !== null && r.finalist_of !== undefined ? { finalistOf: r.finalist_of } : {}),
    ...(r.seed_index !== null && r.seed_index !== undefined ? { seedIndex: r.seed_index } : {}),
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
  /** The rung it starts in (rung campaigns: the top rung for a reference seed or a finalist, trained at the final budget). */
  rung?: number;
  /** A finalist: the candidate it re-seeds. */
  finalistOf?: number;
  /** Reference and finalist seeds: seed index k pairs a finalist's seed k with the reference's. */
  seedIndex?: number;
  /** Latency regimes: the predicted batch-1 milliseconds it was sampled with. */
  predictedLatencyMs?: number;
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
  /** Finished a rung, awaiting the scheduler's decision. */
  paused: number;
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
    const records = this.withSideTables((this.db.prepare(sql).all(...args) as TrialRow[]).map(toRecord));
    // Filtered here rather than in SQL: a store before version 3, read without migrating, has no role column.
    return opts.role === undefined ? records : records.filter((t) => t.role === opts.role);
  }

  /**
   * A cheap fingerprint of every trial's row, curves unparsed: a trial whose fingerprint is unchanged has the same
   * record (every write to a trial moves its state, attempts, times, worker or curves).
   */
  trialVersions(): Map<number, string> {
    const rows = this.db
      .prepare(
        `SELECT idx, state || '|' || attempts || '|' || COALESCE(started_at, '') || '|' || COALESCE(finished_at, '') || '|' ||
           COALESCE(heartbeat_at, '') || '|' || COALESCE(worker, '') || '|' || octet_length(curves) AS v FROM trials`,
      )
      .all() as Array<{ idx: number; v: string }>;
    // Latency is measured after a trial completes, without touching its row.
    const latency = this.latencies();
    return new Map(rows.map((r) => [r.idx, latency.has(r.idx) ? `${r.v}|${latency.get(r.idx)}` : r.v]));
  }

  /** The records of the given trials, in index order. */
  trialsAt(indices: readonly number[]): TrialRecord[] {
    const out: TrialRecord[] = [];
    // In chunks: SQLite caps the number of bound parameters.
    for (let i = 0; i < indices.length; i += 500) {
      const chunk = indices.slice(i, i + 500);
      const sql = `SELECT * FROM trials WHERE idx IN (${chunk.map(() => '?').join(',')}) ORDER BY idx`;
      out.push(...(this.db.prepare(sql).all(...chunk) as TrialRow[]).map(toRecord));
    }
    return this.withSideTables(out.sort((a, b) => a.index - b.index));
  }

  /** Adds what tables beside `trials` hold about each record (side metrics, measured latency). */
  private withSideTables(records: TrialRecord[]): TrialRecord[] {
    const metrics = this.trialMetrics();
    const latency = this.latencies();
    const predicted = this.predictedLatencies();
    for (const t of records) {
      const m = metrics.get(t.index);
      if (m) t.metrics = m;
      if (latency.has(t.index)) t.latencyMs = latency.get(t.index);
      if (predicted.has(t.index)) t.predictedLatencyMs = predicted.get(t.index);
    }
    return records;
  }

  /** Predicted latency by trial index (empty unless the campaign's space has a latency regime). */
  private predictedLatencies(): Map<number, number> {
    const table = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trial_predicted_latency'").get();
    if (!table) return new Map();
    const rows = this.db.prepare('SELECT idx, predicted_ms FROM trial_predicted_latency').all() as { idx: number; predicted_ms: number }[];
    return new Map(rows.map((r) => [r.idx, r.predicted_ms]));
  }

  /** Measured latency by trial index (empty for a campaign that measures none). */
  latencies(): Map<number, number> {
    const table = this.db.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trial_latency'").get();
    if (!table) return new Map();
    const rows = this.db.prepare('SELECT idx, latency_ms FROM trial_latency').all() as { idx: number; latency_ms: number }[];
    return new Map(rows.map((r) => [r.idx, r.latency_ms]));
  }

  /**
   * SQLite's change counter for this connection: it moves when another connection commits, so a reader can tell
   * whether anything changed without reading a row.
   */
  changeCounter(): number {
    return this.db.pragma('data_version', { simple: true }) as number;
  }

  /** Trials with index >= `index` (those added by later rounds), by the primary key. */
  trialsFrom(index: number): TrialRecord[] {
    return this.withSideTables((this.db.prepare('SELECT * FROM trials WHERE idx >= ? ORDER BY idx').all(index) as TrialRow[]).map(toRecord));
  }

  counts(): StateCounts {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM trials GROUP BY state').all() as Array<{ state: TrialState | 'pending'; n: number }>;
    const counts: StateCounts = { waiting: 0, running: 0, complete: 0, failed: 0, pruned: 0, paused: 0, total: 0 };
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

  private trialMetrics(): Map<number, TrialMetrics> {
    const has = this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'trial_metrics'`).get();
    if (!has) return new Map();
    const rows = this.db.prepare('SELECT idx, metrics FROM trial_metrics').all() as Array<{ idx: number; metrics: string }>;
    return new Map(rows.map((r) => [r.idx, JSON.parse(r.metrics) as TrialMetrics]));
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
        `INSERT INTO trials (idx, round, role, widths, seed, flops, params, activations, state, rung, finalist_of, seed_index)
         VALUES (@index, @round, @role, @widths, @seed, @flops, @params, @activations, 'waiting', @rung, @finalistOf, @seedIndex)`,
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
           worker = @worker, error = @error, finished_at = @now, lease_until = NULL,
           rung_results = COALESCE(@rungResults, rung_results), rung_curves = COALESCE(@rungCurves, rung_curves)
         WHERE idx = @index AND state = 'running' AND token = @token`,
      ),
      promote: db.prepare(`UPDATE trials SET state = 'waiting', rung = rung + 1, attempts = 0 WHERE idx = ? AND state = 'paused'`),
      prune: db.prepare(`UPDATE trials SET state = 'pruned' WHERE idx = ? AND state = 'paused'`),
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

  /** Records a trial's measured batch-1 latency on `target` (a later measurement replaces it). */
  recordLatency(index: number, latencyMs: number, target: string): void {
    this.db.exec(TRIAL_LATENCY_TABLE);
    this.db.prepare('INSERT OR REPLACE INTO trial_latency (idx, latency_ms, target) VALUES (?, ?, ?)').run(index, latencyMs, target);
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
      this.insertTrials(round.round, trials);
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

  /**
   * running → complete | failed | paused, for the current attempt only; false (refused, recorded) for a stale one. A
   * complete result appends the trial's rung result (its current rung); `paused` says the rung is not the top one.
   */
  finish(a: Attempt, result: TrialResult, worker: string, opts: { paused?: boolean } = {}): boolean {
    const done = result.status === 'complete';
    const state: TrialState = done ? (opts.paused ? 'paused' : 'complete') : 'failed';
    let rungResults: string | null = null;
    let rungCurves: string | null = null;
    if (done) {
      const row = this.row(a.index);
      // A whole run that reported its lower rungs (a reference seed or finalist) earns those rungs as well; the
      // images it consumed are split between them, so the rungs add up to the run.
      const lower: RungResult[] = (result.lowerRungs ?? []).filter((x) => x.rung < (row.rung ?? 0)).map((x) => ({ ...x, testError: finiteOrNull(x.testError), trainLoss: finiteOrNull(x.trainLoss) }));
      const earned: RungResult = {
        rung: row.rung ?? 0,
        epochs: result.epochs ?? result.curves.length,
        valError: finiteOrNull(result.valError) ?? NaN,
        testError: finiteOrNull(result.testError),
        trainLoss: finiteOrNull(result.trainLoss),
        images: (result.images ?? 0) - lower.reduce((n, x) => n + x.images, 0),
      };
      const replaced = new Set([...lower.map((x) => x.rung), earned.rung]);
      rungResults = JSON.stringify([...(JSON.parse(row.rung_results ?? '[]') as RungResult[]).filter((x) => !replaced.has(x.rung)), ...lower, earned].sort((a, b) => a.rung - b.rung));
      rungCurves = JSON.stringify([...(JSON.parse(row.rung_curves ?? '[]') as EpochCurve[]), ...(result.curves ?? [])]);
    }
    const r = this.stmts.finish.run({
      index: a.index,
      token: a.token,
      state,
      valError: finiteOrNull(result.valError),
      testError: finiteOrNull(result.testError),
      trainLoss: finiteOrNull(result.trainLoss),
      // A finished rung's curves move to rung_curves, so the next rung's attempts start with an empty curves column.
      curves: done ? '[]' : JSON.stringify(result.curves ?? []),
      wallSeconds: result.wallSeconds ?? null,
      imagesPerSecond: finiteOrNull(result.imagesPerSecond),
      backend: result.backend ?? null,
      worker,
      error: result.status === 'failed' ? (result.error ?? 'failed without a reason') : null,
      now: new Date().toISOString(),
      rungResults,
      rungCurves,
    });
    if (r.changes > 0 && result.metrics) {
      this.db.exec(TRIAL_METRICS_TABLE);
      this.db.prepare('INSERT OR REPLACE INTO trial_metrics (idx, metrics) VALUES (?, ?)').run(a.index, JSON.stringify(result.metrics));
    }
    return r.changes > 0 || this.refuse(a, 'result');
  }

  /** paused → waiting in the next rung (the scheduler promoted it), or paused → pruned; false if it was not paused. */
  promote(index: number): boolean {
    return this.stmts.promote.run(index).changes > 0;
  }

  prune(index: number): boolean {
    return this.stmts.prune.run(index).changes > 0;
  }

  /** Adds trials to an existing round (finalists, once the last rung is decided), in one transaction. */
  addTrials(round: number, trials: NewTrial[]): void {
    this.db.transaction(() => this.insertTrials(round, trials))();
  }

  private insertTrials(round: number, trials: NewTrial[]): void {
    for (const t of trials) {
      this.stmts.insertTrial.run({
        index: t.index, round, role: t.role ?? 'sample', widths: JSON.stringify(t.widths), seed: t.seed, ...t.complexity,
        rung: t.rung ?? 0, finalistOf: t.finalistOf ?? null, seedIndex: t.seedIndex ?? null,
      });
    }
    const predicted = trials.filter((t) => t.predictedLatencyMs !== undefined);
    if (!predicted.length) return;
    this.db.exec(TRIAL_PREDICTED_LATENCY_TABLE);
    const insert = this.db.prepare('INSERT OR REPLACE INTO trial_predicted_latency (idx, predicted_ms) VALUES (?, ?)');
    for (const t of predicted) insert.run(t.index, t.predictedLatencyMs);
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
    // A reader copes with older versions as they are; the coordinator migrates them before writing.
    const older = version >= 1 && version < SCHEMA_VERSION;
    if (older && !readonly) migrate(db, version);
    else if (version !== SCHEMA_VERSION && !(older && readonly)) {
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
