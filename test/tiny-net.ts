/** A tiny residual net for pruning tests: two stages joined by a zero-pad shortcut, small enough for the cpu backend. */
import { NetBuilder } from '../src/nets/builder.js';
import type { NetSpec } from '../src/nets/types.js';

/** `smooth` leaves out every ReLU, so the loss is smooth in the weights (finite differences of gradients then converge). */
export function tinyResNet(shortcut: 'zeropad' | 'projection' = 'zeropad', smooth = false): NetSpec {
  const b = new NetBuilder({ family: 'tiny', input: [6, 6, 1], classes: 3, shortcut });
  const act = smooth ? 'none' : 'relu';
  const s1 = b.group('stage1', 'stage', 1, 4);
  const s2 = b.group('stage2', 'stage', 2, 6);
  let x = b.convBn('stem', 'input', s1, 3, 1, { act });
  const i1 = b.group('block1.conv1', 'inner', 1, 3);
  let h = b.convBn('block1.conv1', x, i1, 3, 1, { act });
  h = b.convBn('block1.conv2', h, s1, 3, 1, { act: 'none' });
  x = b.add('block1.add', { op: 'add', inputs: [h, x] });
  if (!smooth) x = b.add('block1.relu', { op: 'relu', input: x });
  const i2 = b.group('block2.conv1', 'inner', 2, 3);
  h = b.convBn('block2.conv1', x, i2, 3, 2, { act });
  h = b.convBn('block2.conv2', h, s2, 3, 1, { act: 'none' });
  const sc =
    shortcut === 'projection'
      ? b.convBn('block2.shortcut', x, s2, 1, 2, { act: 'none' })
      : b.add('block2.shortcut', { op: 'shortcut', input: x, out: s2, stride: 2 });
  x = b.add('block2.add', { op: 'add', inputs: [h, sc] });
  if (!smooth) x = b.add('block2.relu', { op: 'relu', input: x });
  return b.classifier(x);
}
