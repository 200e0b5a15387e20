/** Inference timing of a saved model exported to ONNX and run by ONNX Runtime's CPU execution provider. */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { selectBackend } from '../training/backends/select.js';
import type { WeightSet } from '../training/engine.js';
import { buildModel } from '../training/model.js';
import { readLayersWeights } from '../training/engines/layers-weights.js';
import { readSaved, timeForward, type InferOptions, type InferTiming } from '../training/infer-bench.js';
import { loadTrained } from '../training/save.js';
import { buildOnnx, encodeOnnx, OPSET_DEFAULT } from './onnx.js';

/** ONNX Runtime's version and the threads it runs on, for the line that names the engine. */
export function ortDescription(threads: number): string {
  return `onnxruntime ${ort.env.versions.node ?? ort.env.versions.common} (CPU execution provider, ${threads} intra-op thread${threads === 1 ? '' : 's'}, 1 inter-op)`;
}

/**
 * An inference session of the saved model as `export` writes it (NHWC pixels in [0, 1], dynamic batch). The
 * normalisation is an identity here: timing does not depend on it, and it spares loading the training data.
 */
export async function ortSession(dir: string, threads: number): Promise<{ session: ort.InferenceSession; spec: NetSpec; widths: number[] }> {
  const { metadata, spec } = readSaved(dir);
  const { model } = await loadTrained(dir);
  const weights = readLayersWeights(model, spec);
  model.dispose();
  return { session: await sessionOf(spec, metadata.widths, weights, threads), spec, widths: metadata.widths };
}

async function sessionOf(spec: NetSpec, widths: WidthConfig, weights: WeightSet, threads: number): Promise<ort.InferenceSession> {
  const c = spec.ref.input[2];
  const proto = buildOnnx(spec, widths, weights, {
    opset: OPSET_DEFAULT,
    batch: 'dynamic',
    layout: 'nhwc',
    mean: new Array<number>(c).fill(0),
    std: new Array<number>(c).fill(255),
    producerVersion: 'bench',
  });
  return ort.InferenceSession.create(encodeOnnx(proto), {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  });
}

/** Median batch-1 milliseconds of the network at `widths` in ONNX Runtime: no trained weights needed, timing does not depend on them. */
export async function latencyAtWidths(spec: NetSpec, widths: WidthConfig, threads: number, o: InferOptions): Promise<number> {
  if (!tf.engine().backendName) await selectBackend('cpu');
  const model = buildModel(spec, widths, 0);
  const weights = readLayersWeights(model, spec);
  model.dispose();
  const session = await sessionOf(spec, widths, weights, threads);
  const [h, w, c] = spec.ref.input;
  try {
    const t = await timeForward('', spec, widths, (x, size) => session.run({ pixels: new ort.Tensor('float32', x, [size, h, w, c]) }), { ...o, batch: 1 });
    return t.latencyMs;
  } finally {
    await session.release();
  }
}

/** Times one saved model in ONNX Runtime: batch-1 latency and throughput at o.batch. */
export async function benchOrt(dir: string, threads: number, o: InferOptions): Promise<InferTiming> {
  const { session, spec, widths } = await ortSession(dir, threads);
  const [h, w, c] = spec.ref.input;
  try {
    return await timeForward(dir, spec, widths, (x, size) => session.run({ pixels: new ort.Tensor('float32', x, [size, h, w, c]) }), o);
  } finally {
    await session.release();
  }
}
