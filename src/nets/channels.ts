/**
 * The public channel map: for every channel group, which weights hold its channels (conv outputs, depthwise filters,
 * BN parameters, biases), which next-layer input slices read them, and which zero-pad shortcuts couple it to another
 * group. Complexity, importance scoring and weight inheritance all read coupling from here and nowhere else.
 * Weight names and axes are tfjs's (see src/training/engine.ts).
 */
import { baseWidths, resolveNet } from './resolve.js';
import type { ChannelGroup, NetSpec } from './types.js';

/** A node's channel count is scale x width[group]; group -1: a fixed count of `scale` (the image, the logits). */
export interface ChannelSource {
  group: number;
  scale: number;
}

/** A conv whose output channels are the group's channels: kernel [kh, kw, cin, cout], sliced on axis 3. */
export interface ConvOutput {
  node: string;
  kernel: string;
  bias?: string;
}

/** A depthwise conv whose channels are its input's, so the group's: depthwise_kernel [kh, kw, c, 1], axis 2. */
export interface DepthwiseMember {
  node: string;
  kernel: string;
  bias?: string;
}

/** A batch norm over the group's channels: all four tensors [c]. */
export interface BnMember {
  node: string;
  gamma: string;
  beta: string;
  movingMean: string;
  movingVariance: string;
}

/**
 * A weight that reads the group's channels as its input: a conv kernel on axis 2, or a linear kernel on axis 0. A
 * linear layer after a flatten of an h x w map sees `spatial` = h*w positions, each holding every channel, so the
 * group's channel c is rows {p * width + c : p < spatial} (NHWC flatten order); after global pooling spatial is 1.
 */
export interface InputSlice {
  node: string;
  weight: string;
  axis: number;
  spatial: number;
}

/**
 * A parameter-free shortcut from group `from` into group `to`: it copies input channel i to output channel i for
 * i < min(widths), pads the rest with zeros or drops them.
 */
export interface ZeroPadCoupling {
  node: string;
  from: number;
  to: number;
}

export interface GroupChannels {
  group: ChannelGroup;
  /** Convs whose outputs are this group's channels (more than one where residual adds join them). */
  convs: ConvOutput[];
  depthwise: DepthwiseMember[];
  bns: BnMember[];
  consumers: InputSlice[];
}

export interface ChannelMap {
  groups: GroupChannels[];
  zeroPad: ZeroPadCoupling[];
  /** Every node's channel source, by node id. */
  sources: Map<string, ChannelSource>;
}

/** Where each node's channels come from. Spatial sizes do not depend on widths, so the original's resolution fixes them. */
export function channelSources(spec: NetSpec): Map<string, ChannelSource> {
  const resolved = resolveNet(spec, baseWidths(spec));
  const shapes = new Map(resolved.map((r) => [r.node.id, r.output]));
  const sources = new Map<string, ChannelSource>();
  const src = (id: string): ChannelSource => sources.get(id)!;
  for (const { node } of resolved) {
    let s: ChannelSource;
    switch (node.op) {
      case 'input':
        s = { group: -1, scale: spec.ref.input[2] };
        break;
      case 'conv':
      case 'shortcut':
        s = { group: node.out, scale: 1 };
        break;
      case 'linear':
        s = { group: -1, scale: node.units };
        break;
      case 'flatten': {
        const [h, w] = shapes.get(node.input)!;
        const i = src(node.input);
        s = { group: i.group, scale: i.scale * h * w };
        break;
      }
      case 'add': {
        const [a, b] = node.inputs.map(src);
        // A residual add only ever joins channels of one group; the net descriptions guarantee it.
        if (a.group !== b.group || a.scale !== b.scale) throw new Error(`add ${node.id} joins different channel groups`);
        s = a;
        break;
      }
      default:
        s = src(node.input);
    }
    sources.set(node.id, s);
  }
  return sources;
}

export function channelMap(spec: NetSpec): ChannelMap {
  const sources = channelSources(spec);
  const groups: GroupChannels[] = spec.groups.map((group) => ({ group, convs: [], depthwise: [], bns: [], consumers: [] }));
  const zeroPad: ZeroPadCoupling[] = [];
  const src = (id: string): ChannelSource => sources.get(id)!;
  for (const node of spec.nodes) {
    switch (node.op) {
      case 'conv': {
        groups[node.out].convs.push({ node: node.id, kernel: `${node.id}/kernel`, ...(node.bias ? { bias: `${node.id}/bias` } : {}) });
        const i = src(node.input);
        if (i.group >= 0) groups[i.group].consumers.push({ node: node.id, weight: `${node.id}/kernel`, axis: 2, spatial: i.scale });
        break;
      }
      case 'depthwise': {
        const i = src(node.input);
        if (i.group < 0) throw new Error(`depthwise ${node.id} on the raw input has no channel group`);
        groups[i.group].depthwise.push({
          node: node.id,
          kernel: `${node.id}/depthwise_kernel`,
          ...(node.bias ? { bias: `${node.id}/bias` } : {}),
        });
        break;
      }
      case 'bn': {
        const i = src(node.input);
        if (i.group < 0) throw new Error(`batch norm ${node.id} outside any channel group`);
        const w = (n: string): string => `${node.id}/${n}`;
        groups[i.group].bns.push({
          node: node.id,
          gamma: w('gamma'),
          beta: w('beta'),
          movingMean: w('moving_mean'),
          movingVariance: w('moving_variance'),
        });
        break;
      }
      case 'linear': {
        const i = src(node.input);
        if (i.group >= 0) groups[i.group].consumers.push({ node: node.id, weight: `${node.id}/kernel`, axis: 0, spatial: i.scale });
        break;
      }
      case 'shortcut': {
        const i = src(node.input);
        zeroPad.push({ node: node.id, from: i.group, to: node.out });
        break;
      }
      default:
        break;
    }
  }
  return { groups, zeroPad, sources };
}
