/**
 * Complexity as a polynomial in the group widths, compiled once per network so samplers can score
 * millions of configurations: every conv/linear cost is coef x (width of a) x (width of b).
 */
import { channelSources } from '../nets/channels.js';
import { baseWidths, resolveNet } from '../nets/resolve.js';
import type { NetSpec, WidthConfig } from '../nets/types.js';
import type { Complexity } from './count.js';

/** coef x w[a] x w[b]; -1 stands for a factor of 1. */
interface Term {
  coef: number;
  a: number;
  b: number;
}

export interface ComplexityModel {
  evaluate(widths: WidthConfig): Complexity;
}

export function compileComplexity(spec: NetSpec): ComplexityModel {
  // Spatial sizes do not depend on widths, so one resolution at the original widths fixes them.
  const resolved = resolveNet(spec, baseWidths(spec));
  // Which group each node's channels belong to comes from the public channel map, as for scoring and inheritance.
  const sources = channelSources(spec);
  const flops: Term[] = [];
  const params: Term[] = [];
  const acts: Term[] = [];
  const src = (id: string) => sources.get(id)!;
  for (const { node, output } of resolved) {
    const [oh, ow] = output;
    switch (node.op) {
      case 'conv': {
        const i = src(node.input);
        const k2 = node.kernel * node.kernel;
        flops.push({ coef: k2 * oh * ow * i.scale, a: i.group, b: node.out });
        params.push({ coef: k2 * i.scale, a: i.group, b: node.out });
        if (node.bias) params.push({ coef: 1, a: node.out, b: -1 });
        acts.push({ coef: oh * ow, a: node.out, b: -1 });
        break;
      }
      case 'depthwise': {
        const i = src(node.input);
        const k2 = node.kernel * node.kernel;
        flops.push({ coef: k2 * oh * ow * i.scale, a: i.group, b: -1 });
        params.push({ coef: (k2 + (node.bias ? 1 : 0)) * i.scale, a: i.group, b: -1 });
        acts.push({ coef: oh * ow * i.scale, a: i.group, b: -1 });
        break;
      }
      case 'linear': {
        const i = src(node.input);
        flops.push({ coef: i.scale * node.units, a: i.group, b: -1 });
        params.push({ coef: i.scale * node.units, a: i.group, b: -1 });
        if (node.bias) params.push({ coef: node.units, a: -1, b: -1 });
        acts.push({ coef: node.units, a: -1, b: -1 });
        break;
      }
      case 'bn': {
        const i = src(node.input);
        params.push({ coef: 2 * i.scale, a: i.group, b: -1 });
        break;
      }
      default:
        break;
    }
  }
  const packed = [flops, params, acts].map(pack);
  return {
    evaluate(widths: WidthConfig): Complexity {
      return { flops: sum(packed[0], widths), params: sum(packed[1], widths), activations: sum(packed[2], widths) };
    },
  };
}

/** Flat typed arrays keep evaluation allocation-free in the sampler's hot loop. */
function pack(terms: Term[]): Float64Array {
  const out = new Float64Array(terms.length * 3);
  terms.forEach((t, i) => out.set([t.coef, t.a, t.b], i * 3));
  return out;
}

function sum(terms: Float64Array, widths: WidthConfig): number {
  let total = 0;
  for (let i = 0; i < terms.length; i += 3) {
    const a = terms[i + 1];
    const b = terms[i + 2];
    total += terms[i] * (a < 0 ? 1 : widths[a]) * (b < 0 ? 1 : widths[b]);
  }
  return total;
}
