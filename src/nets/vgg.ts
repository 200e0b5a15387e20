/** CIFAR-style VGGs: 3x3 convs with BN and max pooling, one linear classifier. Every conv is its own group. */
import { NetBuilder } from './builder.js';
import type { NetRef, NetSpec } from './types.js';

type Cfg = (number | 'M')[];

const CONFIGS: Record<string, { cfg: Cfg; bias: boolean; head: 'gap' | 'flatten' }> = {
  // VGG-13/16 for CIFAR: conv bias + BN, global pooling of the last 512 channels (1x1 at 32x32) into one linear layer.
  vgg13: { cfg: [64, 64, 'M', 128, 128, 'M', 256, 256, 'M', 512, 512, 'M', 512, 512, 'M'], bias: true, head: 'gap' },
  vgg16: {
    cfg: [64, 64, 'M', 128, 128, 'M', 256, 256, 256, 'M', 512, 512, 512, 'M', 512, 512, 512, 'M'],
    bias: true,
    head: 'gap',
  },
  // VGG-Small of the quantization and pruning papers: 6 convs without bias, linear on the flattened 4x4x512 map.
  'vgg-small': { cfg: [128, 128, 'M', 256, 256, 'M', 512, 512, 'M'], bias: false, head: 'flatten' },
};

export const VGG_FAMILIES = Object.keys(CONFIGS);

export function vgg(family: string, ref: Required<NetRef>): NetSpec {
  const { cfg, bias, head } = CONFIGS[family];
  const b = new NetBuilder(ref);
  let x = 'input';
  let stage = 1;
  let conv = 0;
  for (const item of cfg) {
    if (item === 'M') {
      x = b.add(`pool${stage}`, { op: 'maxpool', input: x, size: 2, stride: 2, pad: 'same' });
      stage++;
      continue;
    }
    conv++;
    const g = b.group(`conv${conv}`, 'stage', stage, item);
    x = b.convBn(`conv${conv}`, x, g, 3, 1, { bias });
  }
  if (head === 'gap') return b.classifier(x);
  const flat = b.add('flatten', { op: 'flatten', input: x });
  return b.finish(b.add('fc', { op: 'linear', input: flat, units: ref.classes, bias: true }));
}
