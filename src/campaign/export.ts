/**
 * Flat exports of a campaign's trials: trials.csv (one column per channel group) and trials.jsonl. Both list the uniform
 * reference's seeds too, with role 'reference': leave them out of any statistic of the sampled population.
 */
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { CampaignConfig, TrialRecord } from './types.js';

/** The CSV row of one trial: widths spread into one column per group, named by the group. */
export function trialRow(groups: string[], t: TrialRecord): Record<string, string | number | null> {
  const row: Record<string, string | number | null> = {
    index: t.index,
    round: t.round,
    role: t.role,
    state: t.state,
    attempts: t.attempts,
    seed: t.seed,
    flops: t.complexity.flops,
    params: t.complexity.params,
    activations: t.complexity.activations,
    flops_per_param: t.complexity.params > 0 ? t.complexity.flops / t.complexity.params : null,
    val_error: t.valError,
    test_error: t.testError,
    train_loss: t.trainLoss,
    epochs: t.curves.length,
    wall_seconds: t.wallSeconds,
    images_per_second: t.imagesPerSecond,
    latency_ms: t.latencyMs ?? null,
    backend: t.backend,
    worker: t.worker,
    error: t.error,
  };
  groups.forEach((g, i) => (row[g] = t.widths[i]));
  return row;
}

function writeAtomically(path: string, text: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** Rewrites runs/NAME/trials.csv and trials.jsonl from the store's records; readers never see half a file. */
export function exportTrials(dir: string, config: CampaignConfig, trials: TrialRecord[]): { csv: string; jsonl: string } {
  const csv = join(dir, 'trials.csv');
  const jsonl = join(dir, 'trials.jsonl');
  const rows = trials.map((t) => trialRow(config.groups, t));
  const columns = rows.length ? Object.keys(rows[0]) : Object.keys(trialRow(config.groups, emptyTrial(config.groups.length)));
  writeAtomically(csv, stringify(rows, { header: true, columns, cast: { number: (x) => String(x) } }));
  writeAtomically(jsonl, trials.map((t) => JSON.stringify(t)).join('\n') + (trials.length ? '\n' : ''));
  return { csv, jsonl };
}

function emptyTrial(groups: number): TrialRecord {
  return {
    index: 0, round: 0, role: 'sample', widths: new Array<number>(groups).fill(0), seed: 0,
    complexity: { flops: 0, params: 0, activations: 0 }, state: 'waiting', attempts: 0,
    valError: null, testError: null, trainLoss: null, curves: [], wallSeconds: null, imagesPerSecond: null,
    backend: null, worker: null, error: null, startedAt: null, finishedAt: null,
  };
}
