/** CIFAR ResNets (20/32/56/110): 3 stages of basic blocks, widths 16/32/64, as in He et al. 2016. */
import { NetBuilder } from './builder.js';
import type { NetRef, NetSpec } from './types.js';

const STAGE_WIDTHS = [16, 32, 64];

export function resnetCifar(depth: number, ref: Required<NetRef>): NetSpec {
  const blocks = (depth - 2) / 6;
  const b = new NetBuilder(ref);
  // The stem's output meets stage 1's residual adds through identity shortcuts: one group.
  const stageGroups = STAGE_WIDTHS.map((w, s) => b.group(`stage${s + 1}`, 'stage', s + 1, w));
  let x = b.convBn('stem', 'input', stageGroups[0], 3, 1);
  for (let s = 0; s < 3; s++) {
    for (let i = 0; i < blocks; i++) {
      const name = `stage${s + 1}.block${i + 1}`;
      const stride = s > 0 && i === 0 ? 2 : 1;
      const inner = b.group(`${name}.conv1`, 'inner', s + 1, STAGE_WIDTHS[s]);
      const h = b.convBn(`${name}.conv1`, x, inner, 3, stride);
      const y = b.convBn(`${name}.conv2`, h, stageGroups[s], 3, 1, { act: 'none' });
      let shortcut = x;
      if (s > 0 && i === 0) {
        shortcut =
          ref.shortcut === 'projection'
            ? b.convBn(`${name}.shortcut`, x, stageGroups[s], 1, stride, { act: 'none' })
            : b.add(`${name}.shortcut`, { op: 'shortcut', input: x, out: stageGroups[s], stride });
      }
      const sum = b.add(`${name}.add`, { op: 'add', inputs: [y, shortcut] });
      x = b.add(`${name}.relu`, { op: 'relu', input: sum });
    }
  }
  return b.classifier(x);
}
