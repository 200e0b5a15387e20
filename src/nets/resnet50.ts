/** ResNet-50 in torchvision's layout (v1.5: stride on the 3x3 conv, projection shortcuts). */
import { NetBuilder } from './builder.js';
import type { NetRef, NetSpec } from './types.js';

const LAYERS = [3, 4, 6, 3];
const WIDTHS = [64, 128, 256, 512];
const EXPANSION = 4;

export function resnet50(ref: Required<NetRef>): NetSpec {
  const b = new NetBuilder(ref);
  const stem = b.group('stem', 'stem', 0, 64);
  let x = b.convBn('stem', 'input', stem, 7, 2);
  x = b.add('stem.maxpool', { op: 'maxpool', input: x, size: 3, stride: 2, pad: 'same' });
  for (let s = 0; s < LAYERS.length; s++) {
    const out = b.group(`stage${s + 1}`, 'stage', s + 1, WIDTHS[s] * EXPANSION);
    for (let i = 0; i < LAYERS[s]; i++) {
      const name = `stage${s + 1}.block${i + 1}`;
      const stride = s > 0 && i === 0 ? 2 : 1;
      const g1 = b.group(`${name}.conv1`, 'inner', s + 1, WIDTHS[s]);
      const g2 = b.group(`${name}.conv2`, 'inner', s + 1, WIDTHS[s]);
      let h = b.convBn(`${name}.conv1`, x, g1, 1, 1);
      h = b.convBn(`${name}.conv2`, h, g2, 3, stride);
      const y = b.convBn(`${name}.conv3`, h, out, 1, 1, { act: 'none' });
      const shortcut = i === 0 ? b.convBn(`${name}.downsample`, x, out, 1, stride, { act: 'none' }) : x;
      const sum = b.add(`${name}.add`, { op: 'add', inputs: [y, shortcut] });
      x = b.add(`${name}.relu`, { op: 'relu', input: sum });
    }
  }
  return b.classifier(x);
}
