/** Inference timing of a saved model exported to ONNX and run by ONNX Runtime's CPU execution provider. */
import * as tf from '@tensorflow/tfjs';
import * as ort from 'onnxruntime-node';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { selectBackend } from '../training/backends/select.js';
import type { WeightSet } from '../training/engine.js';
import { buildModel } from '../training/model.js';
import { readLayersWeights } from '../training/engines/layers-weights.js';
import { forwardPasses, readSaved, repeatMs, timeForward, type InferOptions, type InferTiming } from '../training/infer-bench.js';
import { loadTrained } from '../training/save.js';
import { buildLayerOnnx, buildOnnx, encodeOnnx, layerInputDims, OPSET_DEFAULT, type LayerShape } from './onnx.js';

/** The version of ONNX Runtime Node loaded. */
export function ortVersion(): string {
  return ort.env.versions.node ?? ort.env.versions.common ?? 'unknown';
}

/** ONNX Runtime's version and the threads it runs on, for the line that names the engine. */
export function ortDescription(threads: number): string {
  return `onnxruntime ${ortVersion()} (CPU execution provider, ${threads} intra-op thread${threads === 1 ? '' : 's'}, 1 inter-op)`;
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
  return ort.InferenceSession.create(encodeOnnx(proto), cpuOptions(threads));
}

function cpuOptions(threads: number): ort.InferenceSession.SessionOptions {
  return { executionProviders: ['cpu'], intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' };
}

/**
 * Milliseconds of one layer by itself (batch 1) in ONNX Runtime, with the session options networks get: the fastest of
 * the repeats, since a layer takes microseconds and any other process's time slice would swamp a median.
 */
export async function timeLayer(layer: LayerShape, threads: number, o: Omit<InferOptions, 'batch'>): Promise<number> {
  const session = await ort.InferenceSession.create(encodeOnnx(buildLayerOnnx(layer)), cpuOptions(threads));
  const dims = layerInputDims(layer);
  const x = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => (i % 13) / 13);
  try {
    return (await repeatMs(forwardPasses(() => session.run({ x: new ort.Tensor('float32', x, dims) }), () => x), 1, { ...o, batch: 1 })).min;
  } finally {
    await session.release();
  }
}

/**
 * Batch-1 milliseconds of the network at `widths` in ONNX Runtime, the median of the repeats (or the fastest): no
 * trained weights needed, timing does not depend on them.
 */
export async function latencyAtWidths(spec: NetSpec, widths: WidthConfig, threads: number, o: InferOptions, statistic: 'median' | 'min' = 'median'): Promise<number> {
  if (!tf.engine().backendName) await selectBackend('cpu');
  const model = buildModel(spec, widths, 0);
  const weights = readLayersWeights(model, spec);
  model.dispose();
  const session = await sessionOf(spec, widths, weights, threads);
  const [h, w, c] = spec.ref.input;
  const x = Float32Array.from({ length: h * w * c }, (_, i) => (i % 13) / 13);
  try {
    return (await repeatMs(forwardPasses(() => session.run({ pixels: new ort.Tensor('float32', x, [1, h, w, c]) }), () => x), 1, { ...o, batch: 1 }))[statistic];
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
