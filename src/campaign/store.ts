/** The durable campaign store: one SQLite file per run directory, written by the coordinator alone, read by anyone. */
import Database from 'better-sqlite3';
import { existsSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Complexity } from '../complexity/count.js';
import type { WidthConfig } from '../nets/types.js';
import type { EpochCurve, TrialResult } from '../training/types.js';
import { UserError } from '../util/errors.js';
import type { CampaignConfig, RoundRecord, TrialRecord, TrialState } from './types.js';

export const STORE_FILE = 'campaign.db';
const SCHEMA_VERSION = 1;

/**
 * One row per trial; a round's trials share its space file. Trial indices are global across rounds so that
 * a trial's seed (derived from the campaign seed and its index) never repeats within a campaign.
 */
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
CREATE TABLE trials (
  idx INTEGER PRIMARY KEY,
  round INTEGER NOT NULL REFERENCES rounds(round),
  widths TEXT NOT NULL,
  seed INTEGER NOT NULL,
  flops INTEGER NOT NULL,
  params INTEGER NOT NULL,
  activations INTEGER NOT NULL,
  state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'complete', 'failed')),
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
  finished_at TEXT
);
CREATE INDEX trials_state ON trials(state);
`;

interface TrialRow {
  idx: number;
  round: number;
  widths: string;
  seed: number;
  flops: number;
  params: number;
  activations: number;
  state: TrialState;
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
}

function toRecord(r: TrialRow): TrialRecord {
  return {
    index: r.idx,
    round: r.round,
    widths: JSON.parse(r.widths) as WidthConfig,
    seed: r.seed,
    complexity: { flops: r.flops, params: r.params, activations: r.activations },
    state: r.state,
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
}

export interface StateCounts {
  pending: number;
  running: number;
  complete: number;
  failed: number;
  total: number;
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

  /** Every trial in index order; `round` limits them to one round. */
  trials(opts: { round?: number; state?: TrialState } = {}): TrialRecord[] {
    const where: string[] = [];
    const args: unknown[] = [];
    if (opts.round !== undefined) (where.push('round = ?'), args.push(opts.round));
    if (opts.state !== undefined) (where.push('state = ?'), args.push(opts.state));
    const sql = `SELECT * FROM trials ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY idx`;
    return (this.db.prepare(sql).all(...args) as TrialRow[]).map(toRecord);
  }

  counts(): StateCounts {
    const rows = this.db.prepare('SELECT state, COUNT(*) AS n FROM trials GROUP BY state').all() as Array<{ state: TrialState; n: number }>;
    const counts: StateCounts = { pending: 0, running: 0, complete: 0, failed: 0, total: 0 };
    for (const { state, n } of rows) (counts[state] = n), (counts.total += n);
    return counts;
  }

  close(): void {
    if (this.db.open) this.db.close();
  }
}

/** Write access for the coordinator: every change is its own transaction, so a kill -9 loses nothing already finished. */
export class CampaignStore extends CampaignReader {
  private readonly stmts;

  constructor(dir: string, db: Database.Database) {
    super(dir, db);
    this.stmts = {
      insertTrial: db.prepare(
        `INSERT INTO trials (idx, round, widths, seed, flops, params, activations, state)
         VALUES (@index, @round, @widths, @seed, @flops, @params, @activations, 'pending')`,
      ),
      start: db.prepare(
        `UPDATE trials SET state = 'running', attempts = attempts + 1, worker = @worker, started_at = @now,
           curves = '[]', error = NULL WHERE idx = @index`,
      ),
      curves: db.prepare('UPDATE trials SET curves = @curves WHERE idx = @index'),
      finish: db.prepare(
        `UPDATE trials SET state = @state, val_error = @valError, test_error = @testError, train_loss = @trainLoss,
           curves = @curves, wall_seconds = @wallSeconds, images_per_second = @imagesPerSecond, backend = @backend,
           worker = @worker, error = @error, finished_at = @now WHERE idx = @index`,
      ),
      release: db.prepare(`UPDATE trials SET state = 'pending', attempts = MAX(attempts - 1, 0) WHERE idx = ?`),
    };
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
          widths: JSON.stringify(t.widths),
          seed: t.seed,
          ...t.complexity,
        });
      }
    })();
  }

  /**
   * Trials left 'running' belong to a coordinator that died (only one runs at a time): they go back to pending,
   * and the attempt they never finished does not count against --max-attempts.
   */
  recoverInterrupted(): number {
    return this.db.prepare(`UPDATE trials SET state = 'pending', attempts = MAX(attempts - 1, 0) WHERE state = 'running'`).run()
      .changes;
  }

  /** Trials to train, in index order: pending ones, and failed ones with attempts left. */
  runnable(maxAttempts: number): TrialRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM trials WHERE state = 'pending' OR (state = 'failed' AND attempts < ?) ORDER BY idx`)
      .all(maxAttempts) as TrialRow[];
    return rows.map(toRecord);
  }

  markRunning(index: number, worker: string | null): void {
    this.stmts.start.run({ index, worker, now: new Date().toISOString() });
  }

  recordCurves(index: number, curves: EpochCurve[]): void {
    this.stmts.curves.run({ index, curves: JSON.stringify(curves) });
  }

  recordResult(index: number, result: TrialResult, worker: string): void {
    this.stmts.finish.run({
      index,
      state: result.status,
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
  }

  /** A trial stopped by Ctrl-C before it finished: pending again, its attempt not counted. */
  release(index: number): void {
    this.stmts.release.run(index);
  }

  nextTrialIndex(): number {
    const row = this.db.prepare('SELECT MAX(idx) AS m FROM trials').get() as { m: number | null };
    return row.m === null ? 0 : row.m + 1;
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
    if (version !== SCHEMA_VERSION) {
      db.close();
      throw new UserError(`${path}: store schema version ${version}, this prunespace reads version ${SCHEMA_VERSION}`);
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
