/** Child of engine-torch-memory.test.ts: the allocator policy this process got, and the mmapped bytes a tapped forward's outputs add. */
import { buildNet } from '../src/nets/registry.js';
import { keepWidths } from '../src/nets/resolve.js';
import { startTorch, torchAddon } from '../src/training/engines/torch.js';

const started = startTorch(1, { cpuOnly: true });
if (!started.ok) throw new Error(started.detail);
const addon = torchAddon().addon!;
const spec = buildNet({ family: 'resnet20', input: [28, 28, 1], classes: 10 });
const net = await started.engine.build(spec, keepWidths(spec, 1), 1, { momentum: 0.9, nesterov: false, weightDecay: 5e-4 });
const size = 1024;
const x = Float32Array.from({ length: size * 28 * 28 }, (_, i) => Math.sin(i));
const before = addon.allocator().mmappedBytes;
// The stem's BN output at full width is 1024 x 16 x 28 x 28 floats (51 MB): above the 32 MB up to which glibc raises its mmap threshold.
const out = await net.forward({ x, size }, { training: false, taps: ['stem.bn'] });
const after = addon.allocator().mmappedBytes;
console.log(JSON.stringify({ policy: addon.allocator().policy, detail: started.detail, tapBytes: out.taps.get('stem.bn')!.byteLength, grown: after - before }));
net.dispose();
