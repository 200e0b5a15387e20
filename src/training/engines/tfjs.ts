/**
 * The tfjs engine (wasm, cpu, native TensorFlow): an EngineNet over a tf.LayersModel built by model.ts. It has no
 * hessianVector (tfjs cannot differentiate our fused kernels twice).
 */
import * as tf from '@tensorflow/tfjs';
import type { NetSpec, WidthConfig } from '../../nets/types.js';
import { selectBackend, type SelectedBackend } from '../backends/select.js';
import type { Engine, EngineBatch, EngineNet, ForwardOutputs, LossSpec, OptimizerSettings, StepStats, WeightSet } from '../engine.js';
import { buildModel, decayedWeights } from '../model.js';
import { engineVariables, readLayersWeights, writeLayersWeights } from './layers-weights.js';
import { deriveSeed } from '../../util/rng.js';

type Outputs = { logits: tf.Tensor2D; taps: Map<string, tf.Tensor> };

/** tf.tidy for results that are plain data: every tensor made inside is disposed. */
function scoped<T>(f: () => T): T {
  tf.engine().startScope();
  try {
    return f();
  } finally {
    tf.engine().endScope();
  }
}

export class TfjsNet implements EngineNet {
  readonly model: tf.LayersModel;
  private readonly weights: tf.Variable[];
  /** tfjs weight name -> the variable's (unique) engine name, for the optimizer. */
  private readonly byName = new Map<string, tf.Variable>();
  private readonly decayed: Set<string>;
  private readonly optimizer: tf.MomentumOptimizer;
  private readonly movingStats: tf.LayerVariable[];
  private readonly tapModels = new Map<string, tf.LayersModel>();
  private readonly shape: [number, number, number];
  private readonly classes: number;
  /** Dropout layers, re-seeded before every training-mode pass so masks follow the net's seed, never Math.random. */
  private readonly dropouts: tf.layers.Layer[];
  private readonly dropoutSeed: number;
  private dropoutPasses = 0;

  constructor(
    readonly spec: NetSpec,
    readonly widths: WidthConfig,
    seed: number,
    private readonly opt: OptimizerSettings,
  ) {
    this.model = buildModel(spec, widths, seed);
    this.weights = this.model.trainableWeights.map((v) => v.read() as tf.Variable);
    for (const w of this.model.trainableWeights) this.byName.set(w.originalName, w.read() as tf.Variable);
    this.decayed = decayedWeights(this.model);
    this.optimizer = tf.train.momentum(0.1, opt.momentum, opt.nesterov);
    this.movingStats = [...engineVariables(this.model, spec).entries()].filter(([n]) => /\/moving_(mean|variance)$/.test(n)).map(([, v]) => v);
    this.shape = [...spec.ref.input];
    this.classes = spec.ref.classes;
    this.dropouts = this.model.layers.filter((l) => l.getClassName() === 'Dropout');
    this.dropoutSeed = deriveSeed(seed, 'dropout');
  }

  /**
   * A fixed seed would draw the same mask at every step, so each training-mode pass gets the next seed of the net's
   * own sequence: masks depend on the net's seed and its pass count only, not on other nets in the process.
   */
  private reseedDropout(training: boolean): void {
    if (!training || this.dropouts.length === 0) return;
    const pass = this.dropoutPasses++;
    // tfjs's Dropout reads its `seed` field at each call; it is not part of the public typings.
    this.dropouts.forEach((l, i) => ((l as unknown as { seed?: number }).seed = deriveSeed(this.dropoutSeed, `${pass}/${i}`)));
  }

  private input(batch: EngineBatch): tf.Tensor4D {
    return tf.tensor4d(batch.x, [batch.size, ...this.shape]);
  }

  /** Runs the model returning the logits and the requested node outputs (a multi-output model sharing the layers). */
  private run(x: tf.Tensor4D, training: boolean, taps: string[] = []): Outputs {
    this.reseedDropout(training);
    if (taps.length === 0) return { logits: this.model.apply(x, { training }) as tf.Tensor2D, taps: new Map() };
    const key = taps.join('\n');
    let m = this.tapModels.get(key);
    if (!m) {
      const outs = taps.map((id) => {
        const layer = this.model.layers.find((l) => l.name === id);
        if (!layer) throw new Error(`tap ${id}: no such node in ${this.spec.ref.family}`);
        return layer.output as tf.SymbolicTensor;
      });
      m = tf.model({ inputs: this.model.inputs, outputs: [this.model.outputs[0], ...outs] });
      this.tapModels.set(key, m);
    }
    const [logits, ...rest] = m.apply(x, { training }) as tf.Tensor[];
    return { logits: logits as tf.Tensor2D, taps: new Map(taps.map((id, i) => [id, rest[i]])) };
  }

  /** Training-mode passes outside trainStep must leave the BN running statistics as they were. */
  private keepingStats<T>(training: boolean, f: () => T): T {
    if (!training) return f();
    const saved = this.movingStats.map((v) => tf.clone(v.read()));
    try {
      return f();
    } finally {
      this.movingStats.forEach((v, i) => v.write(saved[i]));
      tf.dispose(saved);
    }
  }

  private crossEntropy(logits: tf.Tensor2D, labels: Int32Array | undefined, smoothing: number, temperature = 1): tf.Scalar {
    if (!labels) throw new Error('cross-entropy needs labels');
    const onehot = tf.oneHot(tf.tensor1d(labels, 'int32'), this.classes);
    const z = temperature === 1 ? logits : tf.div(logits, temperature);
    return tf.losses.softmaxCrossEntropy(onehot, z, undefined, smoothing) as tf.Scalar;
  }

  private wrongCount(logits: tf.Tensor2D, labels: Int32Array): tf.Scalar {
    return tf.sum(tf.cast(tf.notEqual(tf.argMax(logits, 1), tf.tensor1d(labels, 'int32')), 'float32'));
  }

  private withDecay(grads: Record<string, tf.Tensor>): Record<string, tf.Tensor> {
    if (this.opt.weightDecay <= 0) return grads;
    const out = { ...grads };
    for (const v of this.weights) if (this.decayed.has(v.name) && out[v.name]) out[v.name] = tf.add(out[v.name], tf.mul(v, this.opt.weightDecay));
    return out;
  }

  async trainStep(batch: EngineBatch, lr: number, labelSmoothing: number): Promise<StepStats> {
    this.optimizer.setLearningRate(lr);
    const [loss, wrong] = tf.tidy(() => {
      const x = this.input(batch);
      let wrongCount: tf.Scalar | undefined;
      const { value, grads } = tf.variableGrads(() => {
        this.reseedDropout(true);
        const logits = this.model.apply(x, { training: true }) as tf.Tensor2D;
        // Kept out of the gradient scope's cleanup so the error rate costs no second forward pass.
        wrongCount = tf.keep(this.wrongCount(logits, batch.labels!));
        return this.crossEntropy(logits, batch.labels, labelSmoothing);
      }, this.weights);
      this.optimizer.applyGradients(this.withDecay(grads) as Parameters<tf.MomentumOptimizer['applyGradients']>[0]);
      return [value, wrongCount!];
    });
    const [l, w] = await Promise.all([loss.data(), wrong.data()]);
    tf.dispose([loss, wrong]);
    return { loss: l[0], wrong: w[0] };
  }

  async evaluate(batch: EngineBatch): Promise<{ lossSum: number; wrong: number }> {
    const [loss, wrong] = tf.tidy(() => {
      const logits = this.model.apply(this.input(batch), { training: false }) as tf.Tensor2D;
      const onehot = tf.oneHot(tf.tensor1d(batch.labels!, 'int32'), this.classes);
      return [tf.losses.softmaxCrossEntropy(onehot, logits, undefined, 0, tf.Reduction.SUM), this.wrongCount(logits, batch.labels!)];
    });
    const [l, w] = await Promise.all([loss.data(), wrong.data()]);
    tf.dispose([loss, wrong]);
    return { lossSum: l[0], wrong: w[0] };
  }

  async forward(batch: EngineBatch, opts: { training: boolean; taps?: string[] }): Promise<ForwardOutputs> {
    return this.keepingStats(opts.training, () =>
      scoped(() => {
        const out = this.run(this.input(batch), opts.training, opts.taps);
        return {
          logits: (out.logits.dataSync() as Float32Array).slice(),
          taps: new Map([...out.taps].map(([id, t]) => [id, (t.dataSync() as Float32Array).slice()])),
        };
      }),
    );
  }

  async gradients(batch: EngineBatch, loss: LossSpec, opts: { training?: boolean } = {}): Promise<{ loss: number; grads: WeightSet }> {
    const training = opts.training ?? true;
    return this.keepingStats(training, () =>
      scoped(() => {
        const x = this.input(batch);
        let lossValue = 0;
        const { grads } = tf.variableGrads(() => {
          if (loss.kind === 'cross-entropy') {
            this.reseedDropout(training);
            const logits = this.model.apply(x, { training }) as tf.Tensor2D;
            const l = this.crossEntropy(logits, batch.labels, loss.labelSmoothing ?? 0, loss.temperature ?? 1);
            lossValue = l.dataSync()[0];
            return l;
          }
          // A loss given in TypeScript: its gradients w.r.t. the outputs seed backpropagation, so the surrogate
          // sum(output * seed) has the loss's parameter gradients.
          const out = this.run(x, training, loss.taps);
          const r = loss.fn({
            logits: (out.logits.dataSync() as Float32Array).slice(),
            taps: new Map([...out.taps].map(([id, t]) => [id, (t.dataSync() as Float32Array).slice()])),
          });
          lossValue = r.loss;
          let s: tf.Scalar = tf.scalar(0);
          if (r.dLogits) s = tf.add(s, tf.sum(tf.mul(out.logits, tf.tensor(r.dLogits, out.logits.shape))));
          for (const [id, d] of r.dTaps ?? []) {
            const t = out.taps.get(id);
            if (!t) throw new Error(`dTaps names ${id}, which was not tapped`);
            s = tf.add(s, tf.sum(tf.mul(t, tf.tensor(d, t.shape))));
          }
          return s;
        }, this.weights);
        const out: WeightSet = new Map();
        for (const [name, v] of this.byName) {
          const g = grads[v.name];
          out.set(name, { shape: [...v.shape], data: g ? (g.dataSync() as Float32Array).slice() : new Float32Array(v.size) });
        }
        return { loss: lossValue, grads: out };
      }),
    );
  }

  async applyGradients(grads: WeightSet, lr: number): Promise<void> {
    this.optimizer.setLearningRate(lr);
    tf.tidy(() => {
      const g: Record<string, tf.Tensor> = {};
      for (const [name, w] of grads) {
        const v = this.byName.get(name);
        if (!v) throw new Error(`gradient ${name}: no such trainable weight`);
        if (v.shape.join('x') !== w.shape.join('x')) throw new Error(`gradient ${name}: shape ${w.shape.join('x')} given, ${v.shape.join('x')} expected`);
        g[v.name] = tf.tensor(w.data, w.shape);
      }
      this.optimizer.applyGradients(this.withDecay(g) as Parameters<tf.MomentumOptimizer['applyGradients']>[0]);
    });
  }

  async readWeights(): Promise<WeightSet> {
    return readLayersWeights(this.model, this.spec);
  }

  async writeWeights(weights: WeightSet): Promise<void> {
    writeLayersWeights(this.model, this.spec, weights);
  }

  /* tfjs keeps one accumulator per trainable variable, made at the first step in the order of this.weights. */
  async readOptimizerState(): Promise<WeightSet> {
    const [, ...accumulators] = await this.optimizer.getWeights();
    const names = this.model.trainableWeights.map((w) => w.originalName);
    return new Map(accumulators.map((a, i) => [names[i], { shape: [...a.tensor.shape], data: (a.tensor.dataSync() as Float32Array).slice() }]));
  }

  async writeOptimizerState(state: WeightSet): Promise<void> {
    const names = this.model.trainableWeights.map((w) => w.originalName);
    const values = state.size === 0 ? [] : names.map((name, i) => {
      const m = state.get(name);
      if (!m) throw new Error(`optimizer state: no momentum for ${name}`);
      if (m.shape.join('x') !== this.weights[i].shape.join('x')) throw new Error(`optimizer state ${name}: shape ${m.shape.join('x')} given, ${this.weights[i].shape.join('x')} expected`);
      return { name: `${this.weights[i].name}/momentum`, tensor: tf.tensor(m.data, m.shape) };
    });
    const [iterations, ...old] = (await this.optimizer.getWeights()).map((w) => w.tensor);
    const iter = tf.scalar(0);
    // setWeights makes new variables of the given tensors; the replaced accumulators and the inputs are freed here.
    await this.optimizer.setWeights([{ name: 'iter', tensor: iter }, ...values]);
    tf.dispose([iterations, iter, ...old, ...values.map((v) => v.tensor)]);
  }

  dispose(): void {
    this.optimizer.dispose();
    this.model.dispose();
  }
}

/** A tfjs engine on the named backend (started by selectBackend, which says why). */
export function tfjsEngine(backend: SelectedBackend): Engine {
  return {
    name: backend.name,
    device: 'cpu',
    async build(spec, widths, seed, optimizer) {
      await selectBackend(backend.name);
      return new TfjsNet(spec, widths, seed, optimizer);
    },
  };
}
