/** Dropout follows the net's seed on both engines: masks change every pass, repeat across nets of one seed, and a campaign does not depend on its worker count. */
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { runCampaign } from '../src/campaign/campaign.js';
import { prepareCampaign } from '../src/campaign/create.js';
import type { TrialRecord } from '../src/campaign/types.js';
import { NetBuilder } from '../src/nets/builder.js';
import { baseWidths } from '../src/nets/resolve.js';
import type { NetSpec } from '../src/nets/types.js';
import { makeBatch, normaliser } from '../src/training/data/batch.js';
import { loadData } from '../src/training/data/load.js';
import type { EngineBatch, EngineNet } from '../src/training/engine.js';
import { selectEngine } from '../src/training/engines/select.js';
import { torchAddon } from '../src/training/engines/torch.js';
import { tempDir, tinySettings, trials } from './campaign-helpers.js';

const { addon } = torchAddon();

/** One conv, then global pooling, dropout at 0.5 and the classifier. */
function dropoutNet(): NetSpec {
  const b = new NetBuilder({ family: 'tiny', input: [6, 6, 1], classes: 3, shortcut: 'zeropad' });
  const g = b.group('stem', 'stem', 0, 8);
  const x = b.convBn('stem', 'input', g, 3, 1, { act: 'relu' });
  return b.classifier(x, { dropout: 0.5 });
}

function batch(spec: NetSpec): EngineBatch {
  const data = loadData({ name: 'synthetic', samples: 24 }, { shape: spec.ref.input, classes: spec.ref.classes });
  return makeBatch(data, data.train, Int32Array.from({ length: 16 }, (_, i) => i), normaliser(data));
}

const OPT = { momentum: 0.9, nesterov: false, weightDecay: 0 };
const logits = async (net: EngineNet, b: EngineBatch) => [...(await net.forward(b, { training: true })).logits];

for (const backend of ['wasm', 'torch'] as const) {
  test(`${backend}: dropout masks change every training pass and repeat for nets of the same seed, whatever runs in between`, { skip: backend === 'torch' && !addon ? 'torch addon not built' : false }, async () => {
    const { engine } = await selectEngine(backend);
    const spec = dropoutNet();
    const b = batch(spec);
    const a = await engine.build(spec, baseWidths(spec), 5, OPT);
    const first = await logits(a, b);
    const second = await logits(a, b);
    assert.notDeepEqual(first, second, 'a new mask each pass');
    // Another net, of another seed, training in between, does not shift this seed's masks.
    const other = await engine.build(spec, baseWidths(spec), 6, OPT);
    await other.trainStep(b, 0.1, 0);
    await logits(other, b);
    const again = await engine.build(spec, baseWidths(spec), 5, OPT);
    assert.deepEqual(await logits(again, b), first);
    assert.deepEqual(await logits(again, b), second);
    await a.trainStep(b, 0.1, 0);
    await again.trainStep(b, 0.1, 0);
    const [wa, wb] = [await a.readWeights(), await again.readWeights()];
    for (const [name, w] of wa) assert.deepEqual(w.data, wb.get(name)!.data, name);
    for (const n of [a, other, again]) n.dispose();
  });
}

test('a campaign of dropout nets gives the same results on one worker and on two (torch and wasm)', async (t) => {
  const backends: ('wasm' | 'torch')[] = ['wasm'];
  if (addon) backends.push('torch');
  else t.diagnostic('torch addon not built: wasm only');
  for (const backend of backends) {
    const make = (label: string) => {
      const dir = tempDir(label);
      const space = join(dir, 'mbv2.json');
      writeFileSync(space, JSON.stringify({
        name: 'tiny-mobilenet-v2',
        network: { family: 'mobilenet-v2-cifar', input: '8x8x3', classes: 3 },
        samplers: [{ select: { kinds: ['stage', 'expand', 'head', 'stem'] }, keep: { min: 0.05, max: 0.1 }, distribution: 'uniform', quantum: 1 }],
        regime: { flops: { min: 0.001, max: 0.05 } },
      }));
      return prepareCampaign({ spacePath: space, outDir: join(dir, 'run'), samples: 4, seed: 3, settings: { ...tinySettings(48), backend, threads: 1 }, maxAttempts: 1, saveModels: false }).dir;
    };
    const [one, two] = [make(`dropout-${backend}-w1`), make(`dropout-${backend}-w2`)];
    await runCampaign(one, { workers: 1, progress: { quiet: true } });
    await runCampaign(two, { workers: 2, progress: { quiet: true } });
    const [x, y] = [trials(one), trials(two)];
    assert.ok(x.every((r) => r.state === 'complete'), JSON.stringify(x.map((r) => r.error)));
    const key = (r: TrialRecord) => ({ widths: r.widths, seed: r.seed, valError: r.valError, trainLoss: r.curves[0]?.trainLoss });
    assert.deepEqual(x.map(key), y.map(key), backend);
  }
});
