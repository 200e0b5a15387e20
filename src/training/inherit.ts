/**
 * Weight inheritance: slices a parent's weights (tfjs layout) down to a subnetwork, given the parent channels each
 * group keeps. Which channels to keep is decided elsewhere (src/pruning); here they arrive as plain data.
 */
import { statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { channelMap, type ChannelMap } from '../nets/channels.js';
import { checkWidths } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import type { WeightSet, WeightTensor } from './engine.js';
import { readLayersWeights } from './engines/layers-weights.js';
import { loadTrained, METADATA_JSON, MODEL_JSON, WEIGHTS_BIN } from './save.js';

/**
 * Per group, the parent channel positions the subnetwork keeps, in the subnetwork's channel order. Order matters
 * only across zero-pad shortcuts (see checkKept); elsewhere any order gives the same function.
 */
export type KeptIndices = number[][];

/** The identity choice: every group keeps all of the parent's channels, in order. */
export function keepAll(widths: WidthConfig): KeptIndices {
  return widths.map((w) => Array.from({ length: w }, (_, i) => i));
}

/**
 * Checks that kept indices fit the parent and that every zero-pad shortcut stays exact. The parent's shortcut from
 * group A to group B copies parent channel p of A to channel p of B; the subnetwork's copies its channel j to its
 * channel j, for j below the smaller width. Both agree only if, over the first min(kept A, kept B) positions, A and
 * B keep the same parent channels in the same order: the narrower side's list is a prefix of the wider side's.
 * Beyond it nothing is lost: B's other channels get zeros (their parent sources were pruned from A), and A's other
 * channels are dropped (their parent targets were pruned from B).
 */
export function checkKept(spec: NetSpec, parentWidths: WidthConfig, kept: KeptIndices, map: ChannelMap = channelMap(spec)): void {
  if (kept.length !== spec.groups.length) {
    throw new UserError(`${spec.ref.family} has ${spec.groups.length} channel groups, got kept indices for ${kept.length}`);
  }
  kept.forEach((list, g) => {
    const name = spec.groups[g].name;
    if (list.length < 1) throw new UserError(`group ${g} (${name}) must keep at least one channel`);
    const seen = new Set<number>();
    for (const i of list) {
      if (!Number.isInteger(i) || i < 0 || i >= parentWidths[g]) {
        throw new UserError(`kept index ${i} of group ${g} (${name}) is outside the parent's 0..${parentWidths[g] - 1}`);
      }
      if (seen.has(i)) throw new UserError(`kept index ${i} of group ${g} (${name}) appears twice`);
      seen.add(i);
    }
  });
  for (const { node, from, to } of map.zeroPad) {
    const m = Math.min(kept[from].length, kept[to].length);
    for (let j = 0; j < m; j++) {
      if (kept[from][j] !== kept[to][j]) {
        throw new UserError(
          `zero-pad shortcut ${node}: groups ${spec.groups[from].name} and ${spec.groups[to].name} must keep the same parent ` +
            `channels in their first ${m} positions, position ${j} keeps ${kept[from][j]} and ${kept[to][j]}`,
        );
      }
    }
  }
}

/** Gathers `indices` along `axis` of a row-major tensor. */
function gather(t: WeightTensor, axis: number, indices: number[]): WeightTensor {
  const shape = [...t.shape];
  const outer = shape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const len = shape[axis];
  const out = new Float32Array(outer * indices.length * inner);
  for (let o = 0; o < outer; o++) {
    for (let j = 0; j < indices.length; j++) {
      const from = (o * len + indices[j]) * inner;
      out.set(t.data.subarray(from, from + inner), (o * indices.length + j) * inner);
    }
  }
  shape[axis] = indices.length;
  return { shape, data: out };
}

/** Positions along an axis of spatial x width (channel-minor) that hold the kept channels. */
function spatialIndices(kept: number[], width: number, spatial: number): number[] {
  const out: number[] = [];
  for (let p = 0; p < spatial; p++) for (const c of kept) out.push(p * width + c);
  return out;
}

/**
 * The subnetwork's weights: every conv output of a group, its biases and BN tensors keep the group's kept channels;
 * every conv or linear input reading the group keeps the same channels (a linear layer after a flatten keeps the
 * matching strided rows); depthwise convs keep their group's channels. Weights outside the map (the classifier's
 * bias) are copied. The zero-pad shortcut has no weights: the subnetwork builds its own from the widths.
 */
export function sliceWeights(spec: NetSpec, parentWidths: WidthConfig, parent: WeightSet, kept: KeptIndices): { widths: WidthConfig; weights: WeightSet } {
  checkWidths(spec, parentWidths);
  const map = channelMap(spec);
  checkKept(spec, parentWidths, kept, map);
  const out: WeightSet = new Map();
  const get = (name: string): WeightTensor => {
    const t = out.get(name) ?? parent.get(name);
    if (!t) throw new Error(`parent weights lack ${name}`);
    return t;
  };
  const set = (name: string, axis: number, indices: number[], expected: number): void => {
    const t = get(name);
    if (t.shape[axis] !== expected) {
      throw new UserError(`parent weight ${name} has ${t.shape[axis]} channels on axis ${axis}, the parent's widths say ${expected}`);
    }
    out.set(name, gather(t, axis, indices));
  };
  for (const { group, convs, depthwise, bns, consumers } of map.groups) {
    const k = kept[group.id];
    const w = parentWidths[group.id];
    for (const c of convs) {
      set(c.kernel, 3, k, w);
      if (c.bias) set(c.bias, 0, k, w);
    }
    for (const d of depthwise) {
      set(d.kernel, 2, k, w);
      if (d.bias) set(d.bias, 0, k, w);
    }
    for (const b of bns) for (const n of [b.gamma, b.beta, b.movingMean, b.movingVariance]) set(n, 0, k, w);
    for (const c of consumers) set(c.weight, c.axis, spatialIndices(k, w, c.spatial), w * c.spatial);
  }
  for (const [name, t] of parent) if (!out.has(name)) out.set(name, { shape: [...t.shape], data: t.data.slice() });
  return { widths: kept.map((k) => k.length), weights: out };
}

/** A parent's weights as read once by this worker (tfjs layout); trials slice copies, never these arrays. */
interface ParentWeights {
  widths: WidthConfig;
  weights: WeightSet;
}

/**
 * Parents read by this process or thread, by folder and the saved files' modification times and sizes (a parent
 * retrained in place is read again). A campaign has one parent, so every inheriting trial after a worker's first
 * skips loading and rebuilding the tfjs model. Bounded: a worker serving several campaigns keeps the latest few.
 */
const parentCache = new Map<string, Promise<ParentWeights>>();
const PARENT_CACHE_SIZE = 2;

function parentKey(spec: NetSpec, parentDir: string): string {
  const stamp = [MODEL_JSON, WEIGHTS_BIN, METADATA_JSON].map((f) => {
    try {
      const st = statSync(join(parentDir, f));
      return `${st.mtimeMs}:${st.size}`;
    } catch {
      return 'missing';
    }
  });
  return JSON.stringify([resolve(parentDir), stamp, spec.ref]);
}

async function readParentWeights(spec: NetSpec, parentDir: string): Promise<ParentWeights> {
  const { model, metadata } = await loadTrained(parentDir);
  try {
    const ref = metadata.net as NetSpec['ref'];
    const same = ref.family === spec.ref.family && ref.classes === spec.ref.classes && (ref.shortcut ?? 'zeropad') === spec.ref.shortcut && ref.input.join('x') === spec.ref.input.join('x');
    if (!same) throw new UserError(`parent ${parentDir} is a ${ref.family} on ${ref.input.join('x')}, not the trial's ${spec.ref.family} on ${spec.ref.input.join('x')}`);
    return { widths: metadata.widths, weights: readLayersWeights(model, spec) };
  } finally {
    model.dispose();
  }
}

/** The parent's weights, read once per worker (a failed read is not kept, so the next trial reports it again). */
function parentWeights(spec: NetSpec, parentDir: string): Promise<ParentWeights> {
  const key = parentKey(spec, parentDir);
  let p = parentCache.get(key);
  if (!p) {
    p = readParentWeights(spec, parentDir);
    p.catch(() => parentCache.delete(key));
    parentCache.set(key, p);
    while (parentCache.size > PARENT_CACHE_SIZE) parentCache.delete(parentCache.keys().next().value!);
  }
  return p;
}

/** How many parents this worker holds (tests: a campaign's trials share one). */
export function cachedParents(): number {
  return parentCache.size;
}

/** Forgets the parents read so far. */
export function clearParentCache(): void {
  parentCache.clear();
}

/**
 * A trial's inherited start: the saved parent's weights sliced by the kept indices. The parent must be the same
 * network (family, input, classes, shortcut) and the kept counts must be the trial's widths.
 */
export async function inheritedWeights(spec: NetSpec, widths: WidthConfig, parentDir: string, kept: KeptIndices): Promise<WeightSet> {
  const parent = await parentWeights(spec, parentDir);
  const sliced = sliceWeights(spec, parent.widths, parent.weights, kept);
  if (sliced.widths.join() !== widths.join()) throw new UserError(`kept indices give widths ${sliced.widths.join(',')}, the trial asks for ${widths.join(',')}`);
  return sliced.weights;
}
