/**
 * The torch engine: the libtorch Node-API addon in native/ (built at npm install where libtorch is found). One generic
 * executor runs the resolved NetSpec; initial weights come from the tfjs model builder, so a trial's initialisation
 * does not depend on the engine. hessianVector is exact double backpropagation of the cross-entropy.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { resolveNet } from '../../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../../nets/types.js';
import { selectBackend } from '../backends/select.js';
import type { Engine, EngineBatch, EngineNet, ForwardOutputs, LossSpec, OptimizerSettings, OutputLoss, StepStats, WeightSet } from '../engine.js';
import { buildModel } from '../model.js';
import { readLayersWeights } from './layers-weights.js';
import { deriveSeed } from '../../util/rng.js';

/**
 * Where native/build.mjs leaves the addon (src/ and dist/ are both three levels below the package root);
 * PRUNESPACE_TORCH_ADDON names another build (an empty or missing path leaves this host without torch).
 */
const ADDON = process.env.PRUNESPACE_TORCH_ADDON ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'native', 'build', 'Release', 'prunespace_torch.node');
const INSTALL_HINT = 'install libtorch (apt-get install libtorch-dev, or LIBTORCH=<libtorch dir>) and run npm install again';
export const TORCH_MISSING = `the torch addon is not built; ${INSTALL_HINT}`;

interface NativeNet {
  weightInfo(): { name: string; shape: number[]; trainable: boolean }[];
  trainStep(x: Float32Array, labels: Int32Array, size: number, lr: number, smoothing: number): [number, number];
  evaluate(x: Float32Array, labels: Int32Array, size: number): [number, number];
  forward(x: Float32Array, size: number, training: boolean, taps: string[], keepGraph: boolean): { logits: Float32Array; taps: Float32Array[] };
  backwardSeeds(dLogits: Float32Array | null, dTaps: (Float32Array | null)[]): Float32Array[];
  dropGraph(): void;
  gradients(x: Float32Array, labels: Int32Array | null, size: number, training: boolean, smoothing: number, temperature: number): { loss: number; grads: Float32Array[] };
  hessianVector(x: Float32Array, labels: Int32Array | null, size: number, training: boolean, smoothing: number, temperature: number, v: (Float32Array | null)[]): Float32Array[];
  applyGradients(grads: (Float32Array | null)[], lr: number): void;
  readWeights(): Float32Array[];
  writeWeights(indices: number[], data: Float32Array[]): void;
  readMomentum(): Float32Array[];
  writeMomentum(data: Float32Array[]): void;
  memoryFormat(): TorchMemoryFormat;
  dispose(): void;
}

/** How a net holds activations and kernels; 'channels-last-padded': some feature maps padded with zero channels. */
export type TorchMemoryFormat = 'channels-last' | 'channels-last-padded' | 'nchw';
const MEMORY_FORMATS = ['auto', 'channels-last', 'channels-last-padded', 'nchw'] as const;

/**
 * The memory format nets ask for: 'auto' (on the CPU, channels-last with every feature map's channels padded up to a
 * multiple of 8, where oneDNN trains fastest; NCHW for depthwise nets and on CUDA) unless
 * PRUNESPACE_TORCH_MEMORY_FORMAT forces one.
 */
function memoryFormatSetting(): { format?: (typeof MEMORY_FORMATS)[number]; problem?: string } {
  const env = process.env.PRUNESPACE_TORCH_MEMORY_FORMAT;
  if (env === undefined || env === '') return { format: 'auto' };
  if ((MEMORY_FORMATS as readonly string[]).includes(env)) return { format: env as (typeof MEMORY_FORMATS)[number] };
  return { problem: `PRUNESPACE_TORCH_MEMORY_FORMAT must be ${MEMORY_FORMATS.join(', ')}, got '${env}'` };
}

export interface Addon {
  Net: new (nodes: PlanNode[], opts: Record<string, unknown>) => NativeNet;
  /** libtorch's intra-op threads: one setting for the whole process. */
  setThreads(threads: number): void;
  threads(): number;
  cudaDevices(): number;
  version(): string;
  /** libtorch's operator profiler on the calling thread (bench/profile-step.ts): stop writes a Chrome trace to the path. */
  profileStart(path: string): void;
  profileStop(): void;
  /**
   * glibc's setting for tensor memory, chosen once per process at load: 'heap' (no mmapped chunks, no trimming, so
   * steps reuse their memory instead of faulting it in anew) unless PRUNESPACE_TORCH_MALLOC=system; and the bytes
   * held in mmapped chunks now.
   */
  allocator(): { policy: 'heap' | 'system'; mmappedBytes: number };
}

/** One node as the executor reads it: numeric inputs and every size it needs, resolved at the widths. */
interface PlanNode {
  op: string;
  id: string;
  in: number[];
  inH: number;
  inW: number;
  inC: number;
  outC: number;
  kernel?: number;
  stride?: number;
  same?: boolean;
  bias?: boolean;
  max?: number;
  rate?: number;
}

export function plan(spec: NetSpec, widths: WidthConfig): PlanNode[] {
  const index = new Map<string, number>();
  return resolveNet(spec, widths).map(({ node, inputs, output }, i) => {
    index.set(node.id, i);
    const ins = node.op === 'input' ? [] : node.op === 'add' ? node.inputs : [node.input];
    const [inH, inW, inC] = inputs[0] ?? output;
    const p: PlanNode = { op: node.op, id: node.id, in: ins.map((id) => index.get(id)!), inH, inW, inC, outC: output[2] };
    switch (node.op) {
      case 'conv':
      case 'depthwise':
        Object.assign(p, { kernel: node.kernel, stride: node.stride, same: node.pad === 'same', bias: node.bias });
        break;
      case 'maxpool':
        Object.assign(p, { kernel: node.size, stride: node.stride, same: node.pad === 'same' });
        break;
      case 'shortcut':
        Object.assign(p, { stride: node.stride });
        break;
      case 'relu':
        if (node.max !== undefined) p.max = node.max;
        break;
      case 'dropout':
        p.rate = node.rate;
        break;
      case 'linear':
        // A linear layer on a feature map reads it flattened (h, w, c order), as tfjs's Flatten.
        Object.assign(p, { inC: inH * inW * inC, outC: node.units, bias: node.bias });
        break;
    }
    return p;
  });
}

export type TorchStart = { ok: true; engine: Engine; detail: string } | { ok: false; detail: string };

let loaded: { addon?: Addon; problem?: string } | undefined;

function loadAddon(): { addon?: Addon; problem?: string } {
  if (loaded) return loaded;
  if (!ADDON || !existsSync(ADDON)) return (loaded = { problem: TORCH_MISSING });
  try {
    loaded = { addon: createRequire(import.meta.url)(ADDON) as Addon };
  } catch (e) {
    loaded = { problem: `the torch addon failed to load (${String((e as Error).message).split('\n')[0]}); ${INSTALL_HINT}` };
  }
  return loaded;
}

/** The loaded addon, or why it is not there. */
export function torchAddon(): { addon?: Addon; problem?: string } {
  return loadAddon();
}

/** Whether the addon file exists (the coordinator decides a campaign's engine without loading it). */
export function torchAddonBuilt(): boolean {
  return !!ADDON && existsSync(ADDON);
}

/** Loads the addon and picks the device: the first visible CUDA GPU where there is one, else the CPU. */
export function startTorch(threads: number, opts: { cpuOnly?: boolean; memoryFormat?: (typeof MEMORY_FORMATS)[number] } = {}): TorchStart {
  const { addon, problem } = loadAddon();
  if (!addon) return { ok: false, detail: problem! };
  const memory = opts.memoryFormat ? { format: opts.memoryFormat } : memoryFormatSetting();
  if (!memory.format) return { ok: false, detail: memory.problem! };
  let gpus: number;
  try {
    // Threads are the process's setting: every net of this process runs with the last count asked for.
    addon.setThreads(threads);
    gpus = opts.cpuOnly ? 0 : addon.cudaDevices();
  } catch (e) {
    return { ok: false, detail: (e as Error).message };
  }
  const device = gpus > 0 ? 'cuda:0' : 'cpu';
  const where = gpus > 0 ? `CUDA, ${gpus} visible GPU${gpus > 1 ? 's' : ''}` : `CPU, ${threads} intra-op thread${threads > 1 ? 's' : ''}, no CUDA GPU visible`;
  const heap = addon.allocator().policy === 'system' ? ', glibc malloc defaults' : '';
  const format = memory.format === 'auto' ? '' : `, ${memory.format} forced`;
  return { ok: true, engine: torchEngine(addon, device, memory.format), detail: `libtorch ${addon.version()}, ${where}${heap}${format}` };
}

function torchEngine(addon: Addon, device: string, memoryFormat: string): Engine {
  return {
    name: 'torch',
    device,
    async build(spec, widths, seed, optimizer) {
      // The initial weights are the tfjs builder's, drawn on the JS cpu backend where no tfjs backend runs yet.
      if (!tf.engine().backendName) await selectBackend('cpu');
      const model = buildModel(spec, widths, seed);
      let init: WeightSet;
      try {
        init = readLayersWeights(model, spec);
      } finally {
        model.dispose();
      }
      const net = new TorchNet(addon, spec, widths, device, optimizer, deriveSeed(seed, 'dropout'), memoryFormat);
      await net.writeWeights(init);
      return net;
    },
  };
}

function ceArgs(loss: LossSpec): [number, number] {
  if (loss.kind !== 'cross-entropy') throw new Error('expected a cross-entropy loss');
  return [loss.labelSmoothing ?? 0, loss.temperature ?? 1];
}

export class TorchNet implements EngineNet {
  private readonly net: NativeNet;
  private readonly info: { name: string; shape: number[]; trainable: boolean }[];
  private readonly index = new Map<string, number>();
  private readonly trainable: number;

  constructor(addon: Addon, readonly spec: NetSpec, readonly widths: WidthConfig, device: string, opt: OptimizerSettings, dropoutSeed?: number, memoryFormat = 'auto') {
    // dropoutSeed seeds the net's own dropout generator (absent: libtorch's global one).
    this.net = new addon.Net(plan(spec, widths), { input: spec.ref.input, device, memoryFormat, ...opt, ...(dropoutSeed !== undefined ? { dropoutSeed } : {}) });
    this.info = this.net.weightInfo();
    this.info.forEach((w, i) => this.index.set(w.name, i));
    this.trainable = this.info.filter((w) => w.trainable).length;
  }

  /** The memory format libtorch holds this net's activations and kernels in (the weights it reads and writes are tfjs-laid-out either way). */
  memoryFormat(): TorchMemoryFormat {
    return this.net.memoryFormat();
  }

  /** Trainable parameters (BN scale and shift and biases included, running statistics not): the complexity count's params. */
  trainableParams(): number {
    return this.info.filter((w) => w.trainable).reduce((n, w) => n + w.shape.reduce((a, b) => a * b, 1), 0);
  }

  private grads(arrays: Float32Array[]): WeightSet {
    return new Map(arrays.map((data, i) => [this.info[i].name, { shape: this.info[i].shape, data }]));
  }

  /** A WeightSet as the addon's per-parameter array (tfjs layout); missing entries are null. */
  private byParam(ws: WeightSet, what: string): (Float32Array | null)[] {
    const out: (Float32Array | null)[] = new Array(this.trainable).fill(null);
    for (const [name, w] of ws) {
      const i = this.index.get(name);
      if (i === undefined || i >= this.trainable) throw new Error(`${what} ${name}: no such trainable weight`);
      this.checkShape(name, w.shape, w.data);
      out[i] = w.data;
    }
    return out;
  }

  private checkShape(name: string, shape: number[], data: Float32Array): void {
    const want = this.info[this.index.get(name)!].shape;
    if (shape.join('x') !== want.join('x')) throw new Error(`weight ${name}: shape ${shape.join('x')} given, ${want.join('x')} expected`);
    if (data.length !== want.reduce((a, b) => a * b, 1)) throw new Error(`weight ${name}: ${data.length} values for shape ${want.join('x')}`);
  }

  async trainStep(batch: EngineBatch, lr: number, labelSmoothing: number): Promise<StepStats> {
    const [loss, wrong] = this.net.trainStep(batch.x, batch.labels!, batch.size, lr, labelSmoothing);
    return { loss, wrong };
  }

  async evaluate(batch: EngineBatch): Promise<{ lossSum: number; wrong: number }> {
    const [lossSum, wrong] = this.net.evaluate(batch.x, batch.labels!, batch.size);
    return { lossSum, wrong };
  }

  async forward(batch: EngineBatch, opts: { training: boolean; taps?: string[] }): Promise<ForwardOutputs> {
    const taps = opts.taps ?? [];
    const r = this.net.forward(batch.x, batch.size, opts.training, taps, false);
    return { logits: r.logits, taps: new Map(taps.map((id, i) => [id, r.taps[i]])) };
  }

  async gradients(batch: EngineBatch, loss: LossSpec, opts: { training?: boolean } = {}): Promise<{ loss: number; grads: WeightSet }> {
    const training = opts.training ?? true;
    if (loss.kind === 'cross-entropy') {
      const r = this.net.gradients(batch.x, batch.labels ?? null, batch.size, training, ...ceArgs(loss));
      return { loss: r.loss, grads: this.grads(r.grads) };
    }
    const taps = loss.taps ?? [];
    const r = this.net.forward(batch.x, batch.size, training, taps, true);
    let out: ReturnType<OutputLoss>;
    try {
      out = loss.fn({ logits: r.logits, taps: new Map(taps.map((id, i) => [id, r.taps[i]])) });
      for (const id of out.dTaps?.keys() ?? []) if (!taps.includes(id)) throw new Error(`dTaps names ${id}, which was not tapped`);
    } catch (e) {
      // The kept graph holds every activation of the batch: a loss that throws must not leave it behind.
      this.net.dropGraph();
      throw e;
    }
    const grads = this.net.backwardSeeds(out.dLogits ?? null, taps.map((id) => out.dTaps?.get(id) ?? null));
    return { loss: out.loss, grads: this.grads(grads) };
  }

  /** Exact H·v of the cross-entropy by double backpropagation (a loss given in TypeScript has no second derivative here). */
  async hessianVector(batch: EngineBatch, loss: LossSpec, v: WeightSet, opts: { training?: boolean } = {}): Promise<WeightSet> {
    if (loss.kind !== 'cross-entropy') throw new Error('hessianVector on the torch engine needs the cross-entropy loss');
    const hv = this.net.hessianVector(batch.x, batch.labels ?? null, batch.size, opts.training ?? true, ...ceArgs(loss), this.byParam(v, 'vector'));
    return this.grads(hv);
  }

  async applyGradients(grads: WeightSet, lr: number): Promise<void> {
    this.net.applyGradients(this.byParam(grads, 'gradient'), lr);
  }

  async readWeights(): Promise<WeightSet> {
    const data = this.net.readWeights();
    return new Map(this.info.map((w, i) => [w.name, { shape: w.shape, data: data[i] }]));
  }

  async writeWeights(weights: WeightSet): Promise<void> {
    const indices: number[] = [];
    const data: Float32Array[] = [];
    for (const [name, w] of weights) {
      const i = this.index.get(name);
      if (i === undefined) throw new Error(`weight ${name} is not in this network`);
      this.checkShape(name, w.shape, w.data);
      indices.push(i);
      data.push(w.data);
    }
    this.net.writeWeights(indices, data);
  }

  async readOptimizerState(): Promise<WeightSet> {
    const buffers = this.net.readMomentum();
    return new Map(buffers.flatMap((data, i) => (data.length ? [[this.info[i].name, { shape: this.info[i].shape, data }] as const] : [])));
  }

  async writeOptimizerState(state: WeightSet): Promise<void> {
    const buffers: Float32Array[] = this.info.slice(0, this.trainable).map(() => new Float32Array(0));
    for (const [name, m] of state) {
      const i = this.index.get(name);
      if (i === undefined || i >= this.trainable) throw new Error(`optimizer state ${name}: no such trainable weight`);
      this.checkShape(name, m.shape, m.data);
      buffers[i] = m.data;
    }
    this.net.writeMomentum(buffers);
  }

  dispose(): void {
    this.net.dispose();
  }
}
