/**
 * Latency prediction on ONNX Runtime CPU: a per-layer table (every distinct conv, linear, pool and residual-add shape
 * of a network at a grid of the widths its space allows, each timed once by itself) and a per-network scale fitted to
 * measured end-to-end latency, cached in a JSON file keyed by target,
 * machine and ONNX Runtime version, with its error on held-out configurations.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { resolveNet } from '../nets/resolve.js';
import type { NetRef, NetSpec, WidthConfig } from '../nets/types.js';
import { compileSpace, type GroupChoices, type LatencyPredictor } from '../space/compile.js';
import type { LoadedSpace } from '../space/load.js';
import { sampleSpace } from '../space/sampler.js';
import type { LatencyRegime } from '../space/schema.js';
import { UserError } from '../util/errors.js';
import type { LayerShape } from './onnx.js';
import { latencyAtWidths, ortVersion, timeLayer } from './ort-bench.js';

const FORMAT = 'prunespace-latency-table';

/** What a table's timings are valid for: the same target, processor, core count and ONNX Runtime give the same table. */
export interface TableKey {
  target: LatencyRegime['target'];
  cpu: string;
  cores: number;
  onnxruntime: string;
  intraOpThreads: 1;
  batch: 1;
}

/** Predicted against measured end-to-end latency on configurations the fit did not see. */
export interface HoldoutError {
  n: number;
  /** Median of |predicted - measured| / measured with the fitted scale. */
  medianRelError: number;
  maxRelError: number;
  /** The same median for the bare table sum (no scale): what the fit adds. */
  tableOnlyMedianRelError: number;
  points: { widths: WidthConfig; measuredMs: number; predictedMs: number }[];
}

/** measured ≈ scale x (the table's sum: one run's overhead plus each layer's time less it), for one network over one layer grid. */
export interface NetworkFit {
  network: NetRef;
  /** Hash of the network and the layer keys the grid holds: a different grid is fitted again. */
  grid: string;
  /** Per layer class, the widths of each axis whose layers were timed; predictions interpolate between them. */
  grids: Record<string, number[][]>;
  /** Median over the fit configurations of measured / table sum. */
  scale: number;
  fitConfigs: number;
  holdout: HoldoutError;
  measuredAt: string;
}

interface TableEntry {
  key: TableKey;
  /** Milliseconds of each layer shape by itself (fastest repeat). */
  layers: Record<string, number>;
  fits: NetworkFit[];
}

interface TableFile {
  format: typeof FORMAT;
  version: 1;
  tables: TableEntry[];
}

export interface LatencyModel {
  predict: LatencyPredictor;
  fit: NetworkFit;
  file: string;
  key: TableKey;
  /** Timings this build ran: 0 and 0 when the cache held everything. */
  timed: { layers: number; endToEnd: number };
}

export interface BuildOptions {
  /** Table file (default: defaultTablePath()). */
  file?: string;
  /** Configurations measured end to end for the fit (default 8). */
  fitConfigs?: number;
  /** Held-out configurations measured to state the error (default 8). */
  holdout?: number;
  /**
   * Width grid points per layer axis (default 6); widths between them are interpolated. When none of grid, fitConfigs
   * and holdout is given, a fit of the same network already in the file is used even if it was built on another grid.
   */
  grid?: number;
  log?: (line: string) => void;
}

/** The cache file shared by every space: under $XDG_CACHE_HOME or ~/.cache. */
export function defaultTablePath(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'prunespace', 'latency-tables.json');
}

export function machineKey(target: LatencyRegime['target']): TableKey {
  return { target, cpu: cpus()[0]?.model.trim() ?? 'unknown', cores: cpus().length, onnxruntime: ortVersion(), intraOpThreads: 1, batch: 1 };
}

/** Where a layer's channel count comes from: a channel group, or a count no width changes (the image, the classes). */
type Channels = { group: number } | { fixed: number };

/** One layer of the network: its class (op, attributes, spatial size) and how its one or two width axes follow the widths. */
interface LayerUse {
  cls: string;
  axes: Channels[];
  make: (a: number, b: number) => LayerShape;
}

function channelSources(spec: NetSpec): Map<string, Channels> {
  const src = new Map<string, Channels>();
  for (const node of spec.nodes) {
    switch (node.op) {
      case 'input':
        src.set(node.id, { fixed: spec.ref.input[2] });
        break;
      case 'conv':
      case 'shortcut':
        src.set(node.id, { group: node.out });
        break;
      case 'add':
        src.set(node.id, src.get(node.inputs[0])!);
        break;
      case 'linear':
        src.set(node.id, { fixed: node.units });
        break;
      default:
        src.set(node.id, src.get(node.input)!);
    }
  }
  return src;
}

/** The timed layers of a network, in node order; spatial sizes do not depend on widths, so the full network gives them. */
function layerUses(spec: NetSpec): LayerUse[] {
  const src = channelSources(spec);
  const resolved = resolveNet(spec, spec.groups.map((g) => g.base));
  const uses: LayerUse[] = [];
  for (const { node, inputs } of resolved) {
    const [h, w] = inputs[0] ?? [0, 0];
    switch (node.op) {
      case 'conv':
        uses.push({
          cls: `conv k${node.kernel} s${node.stride} ${node.pad} ${h}x${w}`,
          axes: [src.get(node.input)!, { group: node.out }],
          make: (cin, cout) => ({ op: 'conv', cin, cout, h, w, kernel: node.kernel, stride: node.stride, pad: node.pad, depthwise: false }),
        });
        break;
      case 'depthwise':
        uses.push({
          cls: `depthwise k${node.kernel} s${node.stride} ${node.pad} ${h}x${w}`,
          axes: [src.get(node.input)!],
          make: (c) => ({ op: 'conv', cin: c, cout: c, h, w, kernel: node.kernel, stride: node.stride, pad: node.pad, depthwise: true }),
        });
        break;
      case 'maxpool':
        uses.push({
          cls: `maxpool ${node.size} s${node.stride} ${node.pad} ${h}x${w}`,
          axes: [src.get(node.input)!],
          make: (c) => ({ op: 'maxpool', c, h, w, size: node.size, stride: node.stride, pad: node.pad }),
        });
        break;
      case 'gap':
        uses.push({ cls: `gap ${h}x${w}`, axes: [src.get(node.input)!], make: (c) => ({ op: 'gap', c, h, w }) });
        break;
      case 'add':
        uses.push({ cls: `add ${h}x${w}`, axes: [src.get(node.inputs[0])!], make: (c) => ({ op: 'add', c, h, w }) });
        break;
      case 'linear': {
        // After a flatten the classifier reads h x w values per channel.
        const before = spec.nodes.find((n) => n.id === node.input);
        const flat = before?.op === 'flatten' ? resolved.find((r) => r.node.id === before.id)!.inputs[0] : ([1, 1] as const);
        const per = flat[0] * flat[1];
        uses.push({ cls: `linear x${per} ${node.units}`, axes: [src.get(node.input)!], make: (c) => ({ op: 'linear', fin: per * c, units: node.units }) });
        break;
      }
    }
  }
  return uses;
}

/** At most `points` values of the sorted list, evenly by index, both ends kept. */
function thin(values: number[], points: number): number[] {
  if (values.length <= points) return values;
  const picked = new Set<number>();
  for (let i = 0; i < points; i++) picked.add(values[Math.round((i * (values.length - 1)) / (points - 1))]);
  return [...picked].sort((a, b) => a - b);
}

/** Per layer class, the grid of each axis: the widths the space allows there, thinned. */
function layerGrids(uses: LayerUse[], choices: GroupChoices[], points: number): Map<string, number[][]> {
  const values = (c: Channels) => ('fixed' in c ? [c.fixed] : choices[c.group].widths);
  const grids = new Map<string, Set<number>[]>();
  for (const u of uses) {
    const sets = grids.get(u.cls) ?? u.axes.map(() => new Set<number>());
    u.axes.forEach((a, i) => values(a).forEach((v) => sets[i].add(v)));
    grids.set(u.cls, sets);
  }
  return new Map([...grids].map(([cls, sets]) => [cls, sets.map((s) => thin([...s].sort((a, b) => a - b), points))]));
}

const layerKey = (cls: string, at: number[]) => `${cls} @${at.join('x')}`;

/**
 * A run of a one-layer session costs a fixed overhead besides the layer (input binding, output allocation), which a
 * network pays once, not per layer: timed on a near-empty graph and subtracted from every layer's time.
 */
const OVERHEAD = 'run overhead';
const OVERHEAD_SHAPE: LayerShape = { op: 'add', c: 1, h: 1, w: 1 };

/**
 * The bracketing grid points of x and the weight of the upper one: linear past the top, and below the narrowest
 * width timed its time (a narrower layer is not slower). Extrapolating down a slope that timing noise had turned
 * negative predicted the one-channel network slower than every sampled one, and the uniform reference, searched
 * from the narrowest configuration up, found none.
 */
function bracket(grid: number[], x: number): [number, number, number] {
  if (grid.length === 1) return [0, 0, 0];
  if (x <= grid[0]) return [0, 1, 0];
  let i = 0;
  while (i < grid.length - 2 && grid[i + 1] < x) i++;
  return [i, i + 1, (x - grid[i]) / (grid[i + 1] - grid[i])];
}

/** The table's sum over the network's layers at `widths`: each layer interpolated (bilinearly for convs) on its grid. */
function tableSum(uses: LayerUse[], grids: Record<string, number[][]>, layers: Record<string, number>, widths: WidthConfig): number {
  const overhead = layers[OVERHEAD];
  let total = overhead;
  for (const u of uses) {
    const axes = grids[u.cls];
    const at = u.axes.map((a) => ('fixed' in a ? a.fixed : widths[a.group]));
    const [i0, i1, t] = bracket(axes[0], at[0]);
    if (axes.length === 1) {
      const v = (i: number) => Math.max(0, layers[layerKey(u.cls, [axes[0][i]])] - overhead);
      total += v(i0) * (1 - t) + v(i1) * t;
      continue;
    }
    const [j0, j1, s] = bracket(axes[1], at[1]);
    const v = (i: number, j: number) => Math.max(0, layers[layerKey(u.cls, [axes[0][i], axes[1][j]])] - overhead);
    total += (v(i0, j0) * (1 - s) + v(i0, j1) * s) * (1 - t) + (v(i1, j0) * (1 - s) + v(i1, j1) * s) * t;
  }
  return total;
}

function readTable(file: string): TableFile {
  if (!existsSync(file)) return { format: FORMAT, version: 1, tables: [] };
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new UserError(`${file}: not a latency table (${(e as Error).message.split('\n')[0]})`);
  }
  const t = parsed as Partial<TableFile>;
  if (t?.format !== FORMAT || t.version !== 1 || !Array.isArray(t.tables)) throw new UserError(`${file}: not a prunespace latency table (format ${FORMAT}, version 1)`);
  return t as TableFile;
}

function writeTable(file: string, table: TableFile): void {
  mkdirSync(dirname(file), { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, JSON.stringify(table, null, 1) + '\n');
  renameSync(tmp, file);
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

/**
 * End-to-end timing for the fit: the fastest of more, shorter repeats than a campaign's trial measurement takes, the
 * same statistic as the layers', so that other processes' load reaches neither side of the fit.
 */
const END_TO_END = { repeats: 15, minRepeatMs: 15, warmup: 2 };
const LAYER = { repeats: 15, minRepeatMs: 2, warmup: 3 };

/**
 * Builds (or reads from the cache) the latency model of a space's network on its regime's target and returns its
 * predictor. Layers and fits already in the table file are not timed again; the file is written once, at the end.
 */
export async function buildLatencyModel(loaded: LoadedSpace, opts: BuildOptions = {}): Promise<LatencyModel> {
  const where = loaded.path || loaded.file.name;
  const regime = loaded.file.regime.latency;
  if (!regime) throw new UserError(`${where}: regime.latency is not given, so there is no target to build a latency table for`);
  const file = resolve(opts.file ?? defaultTablePath());
  const fitN = opts.fitConfigs ?? 8;
  const holdoutN = opts.holdout ?? 8;
  if (fitN < 3) throw new UserError(`--fit must be at least 3 (a scale from fewer is at the mercy of one slow measurement), got ${fitN}`);
  const log = opts.log ?? (() => {});
  const table = readTable(file);
  const key = machineKey(regime.target);
  let entry = table.tables.find((t) => JSON.stringify(t.key) === JSON.stringify(key));
  if (!entry) {
    entry = { key, layers: {}, fits: [] };
    table.tables.push(entry);
  }
  const layers = entry.layers;
  const net = loaded.net;
  const compiled = compileSpace(loaded);
  const uses = layerUses(net);
  const grids = layerGrids(uses, compiled.choices, opts.grid ?? 6);
  const needed: { key: string; shape: LayerShape }[] = [{ key: OVERHEAD, shape: OVERHEAD_SHAPE }];
  for (const [cls, axes] of grids) {
    const use = uses.find((u) => u.cls === cls)!;
    const points = axes.length === 1 ? axes[0].map((a) => [a]) : axes[0].flatMap((a) => axes[1].map((b) => [a, b]));
    for (const at of points) needed.push({ key: layerKey(cls, at), shape: use.make(at[0], at[1]) });
  }

  const grid = createHash('sha256').update(JSON.stringify([net.ref, needed.map((n) => n.key).sort()])).digest('hex').slice(0, 16);
  // A fit is usable when it is of this network and every layer its grids name is in the table.
  const sameNet = (f: NetworkFit) =>
    JSON.stringify(f.network) === JSON.stringify(net.ref) && f.grids !== undefined &&
    Object.entries(f.grids).every(([cls, axes]) => (axes.length === 1 ? axes[0].map((a) => [a]) : axes[0].flatMap((a) => axes[1].map((b) => [a, b]))).every((at) => layers[layerKey(cls, at)] !== undefined));
  const explicit = opts.grid !== undefined || opts.fitConfigs !== undefined || opts.holdout !== undefined;
  const cached =
    entry.fits.find((f) => sameNet(f) && f.grid === grid && f.fitConfigs >= fitN && f.holdout.n >= holdoutN) ??
    (explicit ? undefined : entry.fits.filter(sameNet).at(-1));
  if (cached) {
    const sum = (w: WidthConfig) => tableSum(uses, cached.grids, layers, w);
    return { predict: (w) => cached.scale * sum(w), fit: cached, file, key, timed: { layers: 0, endToEnd: 0 } };
  }
  const gridRecord = Object.fromEntries(grids);
  const sum = (w: WidthConfig) => tableSum(uses, gridRecord, layers, w);
  const todo = needed.filter((n) => layers[n.key] === undefined);
  if (todo.length) log(`timing ${todo.length} layer shape(s) of ${net.ref.family} on onnxruntime ${key.onnxruntime} (CPU, 1 intra-op thread, batch 1)`);
  for (const n of todo) layers[n.key] = await timeLayer(n.shape, 1, LAYER);
  if (todo.length) {
    // Timed again once the process is warm (the first timing of a process runs cold), and never above a layer's time,
    // which includes it: an overhead set too high would flatten every layer to nothing.
    const again = await timeLayer(OVERHEAD_SHAPE, 1, LAYER);
    layers[OVERHEAD] = Math.min(again, ...needed.map((n) => layers[n.key]));
  }
  const sample = sampleSpace(compiled, fitN + holdoutN, 0, { ignoreLatency: true });
  if (sample.configs.length < fitN + Math.min(holdoutN, 1)) {
    throw new UserError(`${where}: the space holds only ${sample.configs.length} distinct configurations, too few to fit and check a latency model (${fitN} + ${holdoutN})`);
  }
  log(`measuring ${sample.configs.length} configuration(s) end to end: ${fitN} to fit, ${sample.configs.length - fitN} held out`);
  const measured: { widths: WidthConfig; ms: number; sum: number }[] = [];
  for (const c of sample.configs) measured.push({ widths: c.widths, ms: await latencyAtWidths(net, c.widths, 1, { batch: 1, ...END_TO_END }, 'min'), sum: sum(c.widths) });
  // Fit and held-out configurations alternate, so a change in the machine's load hits both alike.
  const order = measured.map((_, i) => i).sort((a, b) => (a % 2) - (b % 2) || a - b);
  const train = order.slice(0, fitN).map((i) => measured[i]);
  const held = order.slice(fitN).map((i) => measured[i]);
  // The median ratio, not a least-squares line: on a loaded machine one slow measurement tilts a line fitted to a
  // few points over a narrow latency range (slopes below zero were seen), while the table sum already holds the
  // run's fixed overhead.
  const scale = median(train.map((m) => m.ms / m.sum));
  const points = held.map((m) => ({ widths: m.widths, measuredMs: m.ms, predictedMs: scale * m.sum }));
  const rel = points.map((p) => Math.abs(p.predictedMs - p.measuredMs) / p.measuredMs);
  const fit: NetworkFit = {
    network: net.ref,
    grid,
    grids: gridRecord,
    scale,
    fitConfigs: fitN,
    holdout: {
      n: points.length,
      medianRelError: rel.length ? median(rel) : NaN,
      maxRelError: rel.length ? Math.max(...rel) : NaN,
      tableOnlyMedianRelError: held.length ? median(held.map((m) => Math.abs(m.sum - m.ms) / m.ms)) : NaN,
      points,
    },
    measuredAt: new Date().toISOString(),
  };
  entry.fits = [...entry.fits.filter((f) => f.grid !== grid), fit];
  writeTable(file, table);
  return { predict: (w) => scale * sum(w), fit, file, key, timed: { layers: todo.length, endToEnd: measured.length } };
}
