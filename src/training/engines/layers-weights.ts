/** Moves a WeightSet (tfjs names and layout) into and out of a tf.LayersModel built from a NetSpec. */
import * as tf from '@tensorflow/tfjs';
import type { NetSpec } from '../../nets/types.js';
import type { WeightSet } from '../engine.js';

/** The model's weights that cross the engine boundary: all but the frozen zero-pad shortcut kernels. */
export function engineVariables(model: tf.LayersModel, spec: NetSpec): Map<string, tf.LayerVariable> {
  const shortcuts = new Set(spec.nodes.filter((n) => n.op === 'shortcut').map((n) => n.id));
  const out = new Map<string, tf.LayerVariable>();
  for (const w of model.weights) {
    const layer = w.originalName.slice(0, w.originalName.lastIndexOf('/'));
    if (!shortcuts.has(layer)) out.set(w.originalName, w);
  }
  return out;
}

export function readLayersWeights(model: tf.LayersModel, spec: NetSpec): WeightSet {
  const out: WeightSet = new Map();
  for (const [name, v] of engineVariables(model, spec)) {
    const t = v.read();
    out.set(name, { shape: [...t.shape], data: (t.dataSync() as Float32Array).slice() });
  }
  return out;
}

/** Overwrites the named weights; an unknown name or a shape that differs throws naming the weight. */
export function writeLayersWeights(model: tf.LayersModel, spec: NetSpec, weights: WeightSet): void {
  const vars = engineVariables(model, spec);
  for (const [name, w] of weights) {
    const v = vars.get(name);
    if (!v) throw new Error(`weight ${name} is not in this network`);
    if (v.shape.join('x') !== w.shape.join('x')) throw new Error(`weight ${name}: shape ${w.shape.join('x')} given, ${v.shape.join('x')} expected`);
    if (w.data.length !== v.shape.reduce((a: number, b) => a * (b ?? 1), 1)) throw new Error(`weight ${name}: ${w.data.length} values for shape ${w.shape.join('x')}`);
    const t = tf.tensor(w.data, w.shape);
    v.write(t);
    t.dispose();
  }
}
