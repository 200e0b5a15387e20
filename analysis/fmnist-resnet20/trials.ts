/** The worked example's trials, read back from the committed trials.csv and curves.csv (the run directory is not committed). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TrialLike } from '../../src/analysis/population.js';
import { buildNet } from '../../src/nets/registry.js';
import type { NetRef } from '../../src/nets/types.js';

export const here = new URL('.', import.meta.url).pathname;
export const net: NetRef = { family: 'resnet20', input: [28, 28, 1], classes: 10 };
/** The campaign's seed (`search --seed 1`): it seeded the bootstraps and the split of the original analysis. */
export const campaignSeed = 1;

function rows(file: string): Record<string, string>[] {
  const [head, ...lines] = readFileSync(join(here, file), 'utf8').trim().split('\n');
  const cols = head.split(',');
  return lines.map((l) => Object.fromEntries(l.split(',').map((v, i) => [cols[i], v])));
}

export function loadTrials(): TrialLike[] {
  const groups = buildNet(net).groups;
  const curves = new Map<number, { epoch: number; valError: number; trainError: number }[]>();
  for (const r of rows('curves.csv')) {
    const list = curves.get(Number(r.index)) ?? [];
    list.push({ epoch: Number(r.epoch), valError: Number(r.val_error), trainError: Number(r.train_error) });
    curves.set(Number(r.index), list);
  }
  return rows('trials.csv').map((r) => ({
    index: Number(r.index),
    round: Number(r.round),
    state: r.state as TrialLike['state'],
    widths: groups.map((g) => Number(r[g.name])),
    complexity: { flops: Number(r.flops), params: Number(r.params), activations: Number(r.activations) } as TrialLike['complexity'],
    valError: r.val_error === '' ? null : Number(r.val_error),
    testError: r.test_error === '' ? null : Number(r.test_error),
    curves: (curves.get(Number(r.index)) ?? []) as TrialLike['curves'],
  }));
}
