/** The report's training-curves chart: within-epoch points make a line even for one-epoch trials; without them it says why it is absent. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { CampaignAnalysis } from '../src/analysis/analyse.js';
import { curvesPlot, type CurveInput } from '../src/analysis/report/charts.js';
import { renderSvg } from '../src/analysis/report/vega.js';

const analysis = { winners: [{ index: 3 }, { index: 7 }] } as unknown as CampaignAnalysis;
const oneEpoch = (points: boolean, err: number): CurveInput[] => [{
  epoch: 1, valError: err, trainError: err + 0.05,
  ...(points ? { points: [0.25, 0.5, 0.75, 1].map((e) => ({ epoch: e, trainError: err + 0.4 * (1 - e) + 0.05 })) } : {}),
}];

test('one-epoch trials with within-epoch points: a training line per trial and a validation dot, rendered', async () => {
  const plot = curvesPlot(analysis, new Map([[3, oneEpoch(true, 0.12)], [7, oneEpoch(true, 0.15)]]));
  assert.equal(plot.missing, undefined);
  const rows = plot.data[0].rows;
  assert.equal(rows.filter((r) => r.series === 'training').length, 8);
  assert.deepEqual(rows.filter((r) => r.series === 'validation').map((r) => [r.trial, r.epoch, r.error]), [['#3', 1, 0.12], ['#7', 1, 0.15]]);
  const svg = await renderSvg(plot.spec!);
  assert.equal((svg.match(/class="mark-line role-mark/g) ?? []).length, 2, 'one training line per trial');
  assert.equal((svg.match(/class="mark-symbol role-mark/g) ?? []).length, 1, 'the validation dots');
});

test('one-epoch trials without points: no plot, and a sentence saying why', () => {
  const plot = curvesPlot(analysis, new Map([[3, oneEpoch(false, 0.12)], [7, oneEpoch(false, 0.15)]]));
  assert.equal(plot.spec, undefined);
  assert.match(plot.missing!, /single epoch .* each curve would be one point/);
  assert.equal(plot.data[0].rows.length, 4, 'the numbers are still written as CSV');
});

test('several epochs without points still plot per-epoch training error', () => {
  const curves: CurveInput[] = [1, 2, 3].map((e) => ({ epoch: e, valError: 0.3 / e, trainError: 0.35 / e }));
  const plot = curvesPlot(analysis, new Map([[3, curves]]));
  assert.equal(plot.missing, undefined);
  assert.deepEqual(plot.data[0].rows.filter((r) => r.series === 'training').map((r) => r.epoch), [1, 2, 3]);
});

test('a rung that stopped mid-epoch: its validation dot sits where it stopped, not at the epoch\'s end', () => {
  const rung0: CurveInput = { epoch: 1, epochs: 0.25, valError: 0.2, trainError: 0.3, points: [{ epoch: 0.125, trainError: 0.45 }, { epoch: 0.25, trainError: 0.3 }] };
  const rung1: CurveInput = { epoch: 1, valError: 0.12, trainError: 0.15, points: [0.375, 0.5, 0.75, 1].map((e) => ({ epoch: e, trainError: 0.2 })) };
  const plot = curvesPlot(analysis, new Map([[3, [rung0, rung1]]]));
  assert.deepEqual(plot.data[0].rows.filter((r) => r.series === 'validation').map((r) => [r.epoch, r.error]), [[0.25, 0.2], [1, 0.12]]);
});
