/** Exact complexity of a subnetwork: FLOPs (multiply-accumulates), trainable params, activations. */
import { resolveNet, type ResolvedNode } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';

export interface Complexity {
  /** Multiply-accumulates of conv and linear layers. */
  flops: number;
  /** Every trainable parameter, BN scale/shift and biases included. */
  params: number;
  /** Output elements of conv and linear layers. */
  activations: number;
}

/** The cost of one resolved node; zero for nodes without weights or MACs. */
export function nodeComplexity({ node, inputs, output }: ResolvedNode): Complexity {
  const [oh, ow, oc] = output;
  switch (node.op) {
    case 'conv': {
      const weights = node.kernel * node.kernel * inputs[0][2] * oc;
      return { flops: weights * oh * ow, params: weights + (node.bias ? oc : 0), activations: oh * ow * oc };
    }
    case 'depthwise': {
      const weights = node.kernel * node.kernel * oc;
      return { flops: weights * oh * ow, params: weights + (node.bias ? oc : 0), activations: oh * ow * oc };
    }
    case 'linear': {
      const weights = inputs[0][0] * inputs[0][1] * inputs[0][2] * node.units;
      return { flops: weights, params: weights + (node.bias ? node.units : 0), activations: node.units };
    }
    case 'bn':
      return { flops: 0, params: 2 * inputs[0][2], activations: 0 };
    default:
      return { flops: 0, params: 0, activations: 0 };
  }
}

export function complexity(spec: NetSpec, widths: WidthConfig): Complexity {
  const total: Complexity = { flops: 0, params: 0, activations: 0 };
  for (const r of resolveNet(spec, widths)) {
    const c = nodeComplexity(r);
    total.flops += c.flops;
    total.params += c.params;
    total.activations += c.activations;
  }
  return total;
}
