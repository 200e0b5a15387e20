/** Inference timing of saved models on one engine: batch-1 latency and throughput at a larger batch, medians of repeats. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { complexity, type Complexity } from '../complexity/count.js';
import { buildNet } from '../nets/registry.js';
import { checkWidths } from '../nets/resolve.js';
import type { NetSpec } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import { makeRng } from '../util/rng.js';
import type { Engine, EngineBatch, EngineNet } from './engine.js';
import { readLayersWeights } from './engines/layers-weights.js';
import { loadTrained, METADATA_JSON, type SavedMetadata } from './save.js';

export interface InferTiming {
  dir: string;
  family: string;
  complexity: Complexity;
  /** Median milliseconds per batch-1 forward pass. */
  latencyMs: number;
  /** Median images per second at the throughput batch. */
  throughput: number;
  batch: number;
}

export interface InferOptions {
  batch: number;
  repeats: number;
  /** Forward passes per repeat are chosen so a repeat lasts about this long. */
  minRepeatMs: number;
  warmup: number;
}

/** Reads a saved model's metadata and checks it describes a network prunespace can build. */
export function readSaved(dir: string): { metadata: SavedMetadata; spec: NetSpec } {
  let metadata: SavedMetadata;
  try {
    metadata = JSON.parse(readFileSync(join(dir, METADATA_JSON), 'utf8')) as SavedMetadata;
  } catch (e) {
    throw new UserError(`${dir}: not a prunespace model directory (${METADATA_JSON}: ${(e as Error).message.split('\n')[0]})`);
  }
  if (!metadata?.net || !Array.isArray(metadata.widths)) throw new UserError(`${join(dir, METADATA_JSON)}: lacks the network and widths of a prunespace model`);
  const spec = buildNet(metadata.net as NetSpec['ref']);
  checkWidths(spec, metadata.widths);
  return { metadata, spec };
}

function randomBatch(spec: NetSpec, size: number): EngineBatch {
  const rng = makeRng(0, 'bench-infer');
  const n = size * spec.ref.input.reduce((a, b) => a * b, 1);
  return { x: Float32Array.from({ length: n }, () => rng() * 2 - 1), size };
}

async function medianMs(net: EngineNet, batch: EngineBatch, o: InferOptions): Promise<number> {
  for (let i = 0; i < o.warmup; i++) await net.forward(batch, { training: false });
  // Calibrate: enough passes per repeat that timer resolution and scheduling noise stay small.
  const t0 = performance.now();
  await net.forward(batch, { training: false });
  const one = Math.max(performance.now() - t0, 1e-3);
  const iters = Math.max(1, Math.ceil(o.minRepeatMs / one));
  const times: number[] = [];
  for (let r = 0; r < o.repeats; r++) {
    const start = performance.now();
    for (let i = 0; i < iters; i++) await net.forward(batch, { training: false });
    times.push((performance.now() - start) / iters);
  }
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)];
}

/** Times one saved model on the engine. Its weights are loaded, so the work is that of the real model. */
export async function benchInfer(dir: string, engine: Engine, o: InferOptions): Promise<InferTiming> {
  const { metadata, spec } = readSaved(dir);
  const { model } = await loadTrained(dir);
  const weights = readLayersWeights(model, spec);
  model.dispose();
  const net = await engine.build(spec, metadata.widths, 0, { momentum: 0, nesterov: false, weightDecay: 0 });
  try {
    await net.writeWeights(weights);
    const latencyMs = await medianMs(net, randomBatch(spec, 1), o);
    const batchMs = await medianMs(net, randomBatch(spec, o.batch), o);
    return {
      dir,
      family: spec.ref.family,
      complexity: complexity(spec, metadata.widths),
      latencyMs,
      throughput: (1000 * o.batch) / batchMs,
      batch: o.batch,
    };
  } finally {
    net.dispose();
  }
}
