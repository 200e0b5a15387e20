/** The coordinator's incremental trials.csv/trials.jsonl export: byte for byte the full rewrite, reading only changed trials. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { prepareCampaign } from '../src/campaign/create.js';
import { exportTrials, TrialsExport } from '../src/campaign/export.js';
import { openCampaign } from '../src/campaign/store.js';
import { tempDir, tinySettings, writeTinySpace } from './campaign-helpers.js';

const curve = (epoch: number) => ({ epoch, trainLoss: 1 / epoch, trainError: 0.5, valLoss: 1, valError: 0.5, lr: 0.05, seconds: 0.1 });

test('the incremental export equals the full rewrite after every kind of change, and re-reads only what changed', () => {
  const dir = tempDir('export');
  const run = prepareCampaign({ spacePath: writeTinySpace(dir), outDir: join(dir, 'run'), samples: 6, seed: 3, settings: tinySettings(), maxAttempts: 2, saveModels: false }).dir;
  const s = openCampaign(run);
  const config = s.config();
  const exporter = new TrialsExport(run, config);
  let read: number[] = [];
  const trialsAt = s.trialsAt.bind(s);
  s.trialsAt = (indices: number[]) => ((read = indices), trialsAt(indices));
  const files = () => [readFileSync(join(run, 'trials.csv'), 'utf8'), readFileSync(join(run, 'trials.jsonl'), 'utf8')];
  const same = (what: string, expectRead: number) => {
    exporter.write(s);
    const incremental = files();
    assert.equal(read.length, expectRead, `${what}: trials re-read`);
    exportTrials(run, config, s.trials());
    assert.deepEqual(incremental, files(), what);
  };
  const n = s.trials().length;
  same('first export', n);
  same('nothing changed', 0);
  const a = s.start(0, { leaseMs: 60_000, maxAttempts: 2 });
  same('a trial started', 1);
  s.recordCurves(a, [curve(1)], 60_000);
  same('its first epoch', 1);
  s.recordCurves(a, [curve(1), curve(2)], 60_000);
  same('its second epoch', 1);
  s.finish(a, { status: 'complete', valError: 0.25, testError: 0.3, trainLoss: 0.4, curves: [curve(1), curve(2)], wallSeconds: 1, imagesPerSecond: 10, backend: 'wasm' } as never, 'w1');
  same('it finished', 1);
  const b = s.start(1, { leaseMs: 60_000, maxAttempts: 2 });
  const c = s.start(2, { leaseMs: 60_000, maxAttempts: 2 });
  s.finish(b, { status: 'failed', error: 'a "quoted", multi\nline error', curves: [] } as never, 'w2');
  s.release(c);
  same('one failed with an awkward message, one released', 2);
  assert.match(files()[0], /"a ""quoted"", multi\nline error"/);
  // Changes past the start: the unchanged prefix is kept, the rest rewritten.
  const last = s.start(n - 1, { leaseMs: 60_000, maxAttempts: 2 });
  same('the last trial started', 1);
  s.finish(last, { status: 'complete', valError: 0.5, testError: 0.5, trainLoss: 1, curves: [curve(1)], wallSeconds: 1, imagesPerSecond: 10, backend: 'wasm' } as never, 'w1');
  s.heartbeat(s.start(3, { leaseMs: 60_000, maxAttempts: 2 }), 60_000, 'w3');
  same('the last finished, a middle one started on another worker', 2);
  s.close();
});
