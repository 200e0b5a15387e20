/**
 * Where distillation acts in a network, read from the public channel map: the BN layers whose scale and shift carry
 * each group's channels, the stage outputs whose features are matched, and which channels can really be removed
 * where zero-pad shortcuts couple groups.
 */
import { channelMap, channelSources, type ZeroPadCoupling } from '../../nets/channels.js';
import type { NetSpec, WidthConfig } from '../../nets/types.js';

/** The BN node ids of every group, by group id: a channel is silent once its scale and shift are zero in all of them. */
export function bnByGroup(spec: NetSpec): string[][] {
  return channelMap(spec).groups.map((g) => g.bns.map((b) => b.node));
}

export function zeroPadCouplings(spec: NetSpec): ZeroPadCoupling[] {
  return channelMap(spec).zeroPad;
}

/** A tapped stage output: the node, and the group its channels belong to. */
export interface StageTap {
  stage: number;
  tap: string;
  group: number;
}

/**
 * The output of each stage: the last node before the classifier whose channels belong to a group of that stage
 * (in a CIFAR ResNet the last block's ReLU, in a VGG the pooling that ends the stage).
 */
export function stageTaps(spec: NetSpec): StageTap[] {
  const sources = channelSources(spec);
  const last = new Map<number, StageTap>();
  for (const node of spec.nodes) {
    if (node.op === 'linear' || node.op === 'gap' || node.op === 'flatten' || node.op === 'dropout' || node.op === 'input') continue;
    const { group, scale } = sources.get(node.id)!;
    if (group < 0 || scale !== 1) continue;
    const stage = spec.groups[group].stage;
    last.set(stage, { stage, tap: node.id, group });
  }
  return [...last.values()].sort((a, b) => a.stage - b.stage);
}

/**
 * A zero-pad shortcut from group A into group B copies A's channel c into B's channel c (c below A's width), so B's
 * channel c carries A's signal even when B's own BN layers are silent there: it can go only if A's channel c goes
 * too. `removable(g, c, gone)` says whether channel c of group g may be removed given the channels already gone.
 */
export function removableRule(couplings: ZeroPadCoupling[], widths: WidthConfig): (g: number, c: number, gone: Set<number>[]) => boolean {
  const into = new Map<number, number[]>();
  for (const k of couplings) into.set(k.to, [...(into.get(k.to) ?? []), k.from]);
  return (g, c, gone) => (into.get(g) ?? []).every((from) => c >= widths[from] || gone[from].has(c));
}

/**
 * Kept channels, in the order weight slicing needs across zero-pad shortcuts: a group fed by a shortcut lists first
 * the source group's kept channels that it receives, in the source's order, then its own others ascending; the
 * narrower side is then a prefix of the wider one and the sliced shortcut stays exact. Groups are ordered source first.
 */
export function orderKept(couplings: ZeroPadCoupling[], kept: number[][]): number[][] {
  const out = kept.map((k) => [...k].sort((a, b) => a - b));
  // Sources before targets: repeat until stable (couplings form chains stage1 -> stage2 -> stage3).
  for (let pass = 0; pass < couplings.length; pass++) {
    for (const { from, to } of couplings) {
      const mine = new Set(out[to]);
      const head = out[from].filter((c) => mine.has(c));
      const headSet = new Set(head);
      out[to] = [...head, ...out[to].filter((c) => !headSet.has(c))];
    }
  }
  return out;
}
