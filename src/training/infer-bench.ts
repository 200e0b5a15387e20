/** Inference timing of saved models on one engine: batch-1 latency and throughput at a larger batch, medians of repeats. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { complexity, type Complexity } from '../complexity/count.js';
import { buildNet } from '../nets/registry.js';
import { checkWidths } from '../nets/resolve.js';
import type { NetSpec } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import { makeRng } from '../util/rng.js';
import type { Engine } from './engine.js';
import { readLayersWeights } from './engines/layers-weights.js';
import { loadTrained, METADATA_JSON, type SavedMetadata } from './save.js';

export interface InferTiming {
  dir: string;
  family: string;
  complexity: Complexity;
  /** Median milliseconds per batch-1 forward pass. */
  latencyMs: number;
  /** Lower and upper quartiles of the batch-1 repeats, in milliseconds. */
  latencySpread: [number, number];
  /** Median images per second at the throughput batch. */
  throughput: number;
  /** Lower and upper quartiles of the throughput over repeats, in images per second. */
  throughputSpread: [number, number];
  batch: number;
}

/** One forward pass of a batch of `size` images (NHWC); what it returns is ignored. */
export type TimedForward = (x: Float32Array, size: number) => Promise<unknown>;

/**
 * Runs `count` forward passes of a batch of `size` images and returns the milliseconds they took, measured where the
 * passes run (in this process, or inside a browser page so that driving it costs nothing).
 */
export type TimedPasses = (count: number, size: number) => Promise<number>;

/** Median and quartiles of repeats, each the mean milliseconds per pass over a run of passes. */
export interface RepeatTimes {
  median: number;
  /** The fastest repeat: the least disturbed by other processes, for timing tiny layers on a shared machine. */
  min: number;
  quartiles: [number, number];
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

/** The pixels every engine is timed on: `size` NHWC images in [0, 1], the same for every run. */
export function randomBatch(spec: NetSpec, size: number): Float32Array {
  const rng = makeRng(0, 'bench-infer');
  const n = size * spec.ref.input.reduce((a, b) => a * b, 1);
  return Float32Array.from({ length: n }, () => rng());
}

const quantile = (sorted: number[], q: number): number => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** Milliseconds per forward pass: warm-up, calibrated passes per repeat, median, fastest and quartiles over repeats. */
export async function repeatMs(passes: TimedPasses, size: number, o: InferOptions): Promise<RepeatTimes> {
  if (o.warmup > 0) await passes(o.warmup, size);
  // Calibrate: enough passes per repeat that timer resolution and scheduling noise stay small.
  const one = Math.max(await passes(1, size), 1e-3);
  const iters = Math.max(1, Math.ceil(o.minRepeatMs / one));
  const times: number[] = [];
  for (let r = 0; r < o.repeats; r++) times.push((await passes(iters, size)) / iters);
  times.sort((a, b) => a - b);
  return { median: quantile(times, 0.5), min: times[0], quartiles: [quantile(times, 0.25), quantile(times, 0.75)] };
}

/** Times passes of a saved model: batch-1 latency, then throughput at o.batch. */
export async function timePasses(dir: string, spec: NetSpec, widths: number[], passes: TimedPasses, o: InferOptions): Promise<InferTiming> {
  const one = await repeatMs(passes, 1, o);
  const many = await repeatMs(passes, o.batch, o);
  const rate = (ms: number): number => (1000 * o.batch) / ms;
  return {
    dir,
    family: spec.ref.family,
    complexity: complexity(spec, widths),
    latencyMs: one.median,
    latencySpread: one.quartiles,
    throughput: rate(many.median),
    throughputSpread: [rate(many.quartiles[1]), rate(many.quartiles[0])],
    batch: o.batch,
  };
}

/** Passes of a forward function in this process, timed around the loop; `input` gives the batch of each size. */
export function forwardPasses(forward: TimedForward, input: (size: number) => Float32Array): TimedPasses {
  return async (count, size) => {
    const x = input(size);
    const start = performance.now();
    for (let i = 0; i < count; i++) await forward(x, size);
    return performance.now() - start;
  };
}

/** Times a forward function of a saved model in this process: batch-1 latency, then throughput at o.batch. */
export async function timeForward(dir: string, spec: NetSpec, widths: number[], forward: TimedForward, o: InferOptions): Promise<InferTiming> {
  const inputs = new Map([1, o.batch].map((size) => [size, randomBatch(spec, size)]));
  return timePasses(dir, spec, widths, forwardPasses(forward, (size) => inputs.get(size)!), o);
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
    return await timeForward(dir, spec, metadata.widths, (x, size) => net.forward({ x, size }, { training: false }), o);
  } finally {
    net.dispose();
  }
}
