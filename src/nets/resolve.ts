/** Resolves a NetSpec at a width configuration: each node's output shape, the basis of counts and models. */
import { UserError } from '../util/errors.js';
import type { NetNode, NetSpec, Padding, Shape, WidthConfig } from './types.js';

export interface ResolvedNode {
  node: NetNode;
  /** Shapes of the node's inputs, in order. */
  inputs: Shape[];
  output: Shape;
}

export function outSize(size: number, kernel: number, stride: number, pad: Padding): number {
  return pad === 'same' ? Math.ceil(size / stride) : Math.floor((size - kernel) / stride) + 1;
}

/** The original network's widths. */
export function baseWidths(spec: NetSpec): WidthConfig {
  return spec.groups.map((g) => g.base);
}

/**
 * Every group keeps `ratio` x its width, rounded half up to a multiple of its quantum (default 1), at least one
 * quantum (or the whole group where it is narrower), at most the whole group.
 */
export function uniformWidths(bases: WidthConfig, ratio: number, quanta?: readonly number[]): WidthConfig {
  return bases.map((b, g) => {
    const q = quanta?.[g] ?? 1;
    // The epsilon keeps 0.5 x 25 = 12.5 from rounding down through floating-point error.
    const w = q * Math.floor((ratio * b) / q + 0.5 + 1e-9);
    return Math.min(b, Math.max(Math.min(q, b), w));
  });
}

/** Every prunable group keeps round-half-up(ratio x width) channels, at least 1. */
export function keepWidths(spec: NetSpec, ratio: number): WidthConfig {
  if (!(ratio > 0 && ratio <= 1)) throw new UserError(`--keep must be in (0, 1], got ${ratio}`);
  return uniformWidths(baseWidths(spec), ratio);
}

export function checkWidths(spec: NetSpec, widths: WidthConfig): void {
  if (widths.length !== spec.groups.length) {
    throw new UserError(`${spec.ref.family} has ${spec.groups.length} channel groups, got ${widths.length} widths`);
  }
  widths.forEach((w, i) => {
    const g = spec.groups[i];
    if (!Number.isInteger(w) || w < 1 || w > g.base) {
      throw new UserError(`width of group ${i} (${g.name}) must be an integer in 1..${g.base}, got ${w}`);
    }
  });
}

export function resolveNet(spec: NetSpec, widths: WidthConfig): ResolvedNode[] {
  checkWidths(spec, widths);
  const shapes = new Map<string, Shape>();
  const get = (id: string): Shape => {
    const s = shapes.get(id);
    if (!s) throw new Error(`node input ${id} is not defined before use`);
    return s;
  };
  const resolved: ResolvedNode[] = [];
  for (const node of spec.nodes) {
    let inputs: Shape[];
    let output: Shape;
    switch (node.op) {
      case 'input':
        inputs = [];
        output = [...spec.ref.input];
        break;
      case 'conv': {
        const [h, w] = (inputs = [get(node.input)])[0];
        output = [outSize(h, node.kernel, node.stride, node.pad), outSize(w, node.kernel, node.stride, node.pad), widths[node.out]];
        break;
      }
      case 'depthwise': {
        const [h, w, c] = (inputs = [get(node.input)])[0];
        output = [outSize(h, node.kernel, node.stride, node.pad), outSize(w, node.kernel, node.stride, node.pad), c];
        break;
      }
      case 'maxpool': {
        const [h, w, c] = (inputs = [get(node.input)])[0];
        output = [outSize(h, node.size, node.stride, node.pad), outSize(w, node.size, node.stride, node.pad), c];
        break;
      }
      case 'shortcut': {
        const [h, w] = (inputs = [get(node.input)])[0];
        output = [outSize(h, 1, node.stride, 'same'), outSize(w, 1, node.stride, 'same'), widths[node.out]];
        break;
      }
      case 'add': {
        inputs = node.inputs.map(get);
        const [a, b] = inputs;
        if (a.join() !== b.join()) throw new Error(`add ${node.id}: shapes ${a.join('x')} and ${b.join('x')} differ`);
        output = a;
        break;
      }
      case 'gap':
        inputs = [get(node.input)];
        output = [1, 1, inputs[0][2]];
        break;
      case 'flatten': {
        const [h, w, c] = (inputs = [get(node.input)])[0];
        output = [1, 1, h * w * c];
        break;
      }
      case 'linear':
        inputs = [get(node.input)];
        output = [1, 1, node.units];
        break;
      case 'bn':
      case 'relu':
      case 'dropout':
        inputs = [get(node.input)];
        output = inputs[0];
        break;
    }
    if (output.some((d) => d < 1)) {
      throw new UserError(`input ${spec.ref.input.join('x')} is too small for ${spec.ref.family}: ${node.id} would be empty`);
    }
    shapes.set(node.id, output);
    resolved.push({ node, inputs, output });
  }
  return resolved;
}
