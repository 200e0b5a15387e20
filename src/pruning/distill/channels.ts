/**
 * Where each channel group lives in a network for distillation: the BN layers whose scale and shift carry its
 * channels (the sparsity acts on them) and the stage outputs whose features are matched.
 */
import type { NetSpec } from '../../nets/types.js';

/** The group whose channels each node's output carries (-1: none, e.g. the input image or the logits). */
export function outputGroups(spec: NetSpec): Map<string, number> {
  const group = new Map<string, number>();
  for (const node of spec.nodes) {
    switch (node.op) {
      case 'input':
      case 'linear':
        group.set(node.id, -1);
        break;
      case 'conv':
      case 'shortcut':
        group.set(node.id, node.out);
        break;
      case 'add':
        group.set(node.id, group.get(node.inputs[0])!);
        break;
      default:
        // depthwise, bn, relu, pooling, flatten, dropout: the input's channels.
        group.set(node.id, group.get(node.input)!);
    }
  }
  return group;
}

/** The BN node ids of every group, by group id: a channel is gone once its scale and shift are zero in all of them. */
export function bnByGroup(spec: NetSpec): string[][] {
  const group = outputGroups(spec);
  const out: string[][] = spec.groups.map(() => []);
  for (const node of spec.nodes) if (node.op === 'bn' && group.get(node.id)! >= 0) out[group.get(node.id)!].push(node.id);
  return out;
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
  const group = outputGroups(spec);
  const last = new Map<number, StageTap>();
  for (const node of spec.nodes) {
    if (node.op === 'linear' || node.op === 'gap' || node.op === 'flatten' || node.op === 'dropout' || node.op === 'input') continue;
    const g = group.get(node.id)!;
    if (g < 0) continue;
    const stage = spec.groups[g].stage;
    last.set(stage, { stage, tap: node.id, group: g });
  }
  return [...last.values()].sort((a, b) => a.stage - b.stage);
}
