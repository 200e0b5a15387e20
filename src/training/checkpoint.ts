/** Training checkpoints: weights, BN statistics, momentum buffers and the step reached, so a run continues exactly. */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { EngineNet, WeightSet } from './engine.js';

const MANIFEST = 'checkpoint.json';
const DATA = 'checkpoint.bin';

interface Entry {
  name: string;
  shape: number[];
  /** Offset into checkpoint.bin, in floats. */
  offset: number;
}

interface Manifest {
  /** Optimizer steps taken by the run this checkpoint stops. */
  step: number;
  weights: Entry[];
  momentum: Entry[];
}

export interface Checkpoint {
  step: number;
  weights: WeightSet;
  momentum: WeightSet;
}

function layout(set: WeightSet, start: number): { entries: Entry[]; end: number } {
  const entries: Entry[] = [];
  let offset = start;
  for (const [name, t] of set) {
    entries.push({ name, shape: t.shape, offset });
    offset += t.data.length;
  }
  return { entries, end: offset };
}

/** Reads the net's state into a checkpoint at `step`. */
export async function captureCheckpoint(net: EngineNet, step: number): Promise<Checkpoint> {
  return { step, weights: await net.readWeights(), momentum: await net.readOptimizerState() };
}

/** Restores weights, statistics and momentum into a freshly built net of the same widths. */
export async function restoreCheckpoint(net: EngineNet, c: Checkpoint): Promise<void> {
  await net.writeWeights(c.weights);
  await net.writeOptimizerState(c.momentum);
}

/** Writes the checkpoint as a directory, replacing one at `dir` only once the new one is whole (a kill -9 leaves the old). */
export function saveCheckpoint(dir: string, c: Checkpoint): void {
  const w = layout(c.weights, 0);
  const m = layout(c.momentum, w.end);
  const data = new Float32Array(m.end);
  for (const [set, entries] of [[c.weights, w.entries], [c.momentum, m.entries]] as const) {
    for (const e of entries) data.set(set.get(e.name)!.data, e.offset);
  }
  const manifest: Manifest = { step: c.step, weights: w.entries, momentum: m.entries };
  mkdirSync(dirname(dir), { recursive: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  writeFileSync(join(tmp, DATA), new Uint8Array(data.buffer));
  writeFileSync(join(tmp, MANIFEST), JSON.stringify(manifest));
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
}

export function hasCheckpoint(dir: string): boolean {
  return existsSync(join(dir, MANIFEST));
}

export function loadCheckpoint(dir: string): Checkpoint {
  if (!hasCheckpoint(dir)) throw new Error(`no checkpoint at ${dir} to continue from (workers of a rung campaign must see its run directory)`);
  const manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest;
  const bytes = readFileSync(join(dir, DATA));
  const data = new Float32Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
  const read = (entries: Entry[]): WeightSet =>
    new Map(entries.map((e) => [e.name, { shape: e.shape, data: data.slice(e.offset, e.offset + e.shape.reduce((a, b) => a * b, 1)) }]));
  return { step: manifest.step, weights: read(manifest.weights), momentum: read(manifest.momentum) };
}
