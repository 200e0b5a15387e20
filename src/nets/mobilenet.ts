/** MobileNetV1 (Howard et al. 2017) and MobileNetV2 (torchvision's layout), at 224 and with CIFAR strides. */
import { NetBuilder } from './builder.js';
import type { NetRef, NetSpec } from './types.js';

/** [pointwise width, depthwise stride] pairs after the stem. */
const V1_BLOCKS: [number, number][] = [
  [64, 1], [128, 2], [128, 1], [256, 2], [256, 1], [512, 2],
  [512, 1], [512, 1], [512, 1], [512, 1], [512, 1], [1024, 2], [1024, 1],
];

export function mobilenetV1(ref: Required<NetRef>, cifar: boolean): NetSpec {
  const b = new NetBuilder(ref);
  const stem = b.group('stem', 'stem', 0, 32);
  // CIFAR variant: the stem keeps the 32x32 resolution; the 13 blocks are those of the paper.
  let x = b.convBn('stem', 'input', stem, 3, cifar ? 1 : 2);
  let stage = 1;
  V1_BLOCKS.forEach(([width, stride], i) => {
    if (stride === 2) stage++;
    const name = `block${i + 1}`;
    // The depthwise conv keeps its input's channels, so it belongs to the previous group.
    x = b.depthwiseBn(`${name}.dw`, x, 3, stride, 'relu');
    const pw = b.group(`${name}.pw`, 'pointwise', stage, width);
    x = b.convBn(`${name}.pw`, x, pw, 1, 1);
  });
  return b.classifier(x);
}

/** Inverted residual settings [expansion t, width c, blocks n, stride s]. */
type V2Setting = [number, number, number, number];
const V2_IMAGENET: V2Setting[] = [
  [1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1],
];
// CIFAR variant: stem stride 1 and the second setting at stride 1, so 32x32 ends at 4x4.
const V2_CIFAR: V2Setting[] = V2_IMAGENET.map((s, i) => (i === 1 ? [s[0], s[1], s[2], 1] : s));

export function mobilenetV2(ref: Required<NetRef>, cifar: boolean): NetSpec {
  const settings = cifar ? V2_CIFAR : V2_IMAGENET;
  const b = new NetBuilder(ref);
  let inGroup = b.group('stem', 'stem', 0, 32);
  let inWidth = 32;
  let x = b.convBn('stem', 'input', inGroup, 3, cifar ? 1 : 2, { act: 'relu6' });
  let block = 0;
  settings.forEach(([t, c, n, s], si) => {
    // Every block of a setting after the first adds into the first block's output: one group per setting.
    const out = b.group(`stage${si + 1}`, 'stage', si + 1, c);
    for (let i = 0; i < n; i++) {
      block++;
      const name = `block${block}`;
      const stride = i === 0 ? s : 1;
      let h = x;
      if (t !== 1) {
        const expand = b.group(`${name}.expand`, 'expand', si + 1, Math.round(inWidth * t));
        h = b.convBn(`${name}.expand`, h, expand, 1, 1, { act: 'relu6' });
      }
      h = b.depthwiseBn(`${name}.dw`, h, 3, stride, 'relu6');
      const y = b.convBn(`${name}.project`, h, out, 1, 1, { act: 'none' });
      const residual = stride === 1 && inGroup === out;
      x = residual ? b.add(`${name}.add`, { op: 'add', inputs: [y, x] }) : y;
      inGroup = out;
      inWidth = c;
    }
  });
  const head = b.group('head', 'head', settings.length + 1, 1280);
  x = b.convBn('head', x, head, 1, 1, { act: 'relu6' });
  return b.classifier(x, { dropout: 0.2 });
}
