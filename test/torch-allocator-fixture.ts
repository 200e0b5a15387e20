/** Child of engine-torch-memory.test.ts: the allocator policy loading the addon set, and the mmapped bytes a large block adds. */
import { startTorch, torchAddon } from '../src/training/engines/torch.js';

const started = startTorch(1, { cpuOnly: true });
if (!started.ok) throw new Error(started.detail);
const addon = torchAddon().addon!;
const before = addon.allocator().mmappedBytes;
// Node takes an ArrayBuffer's memory from malloc. 256 MB is far above the 32 MB up to which glibc raises its mmap
// threshold and more than any free stretch a fresh process's heap holds, so glibc's defaults map it on its own.
const block = Buffer.allocUnsafeSlow(256 * 2 ** 20).fill(1);
const grown = addon.allocator().mmappedBytes - before;
console.log(JSON.stringify({ policy: addon.allocator().policy, detail: started.detail, blockBytes: block.byteLength, grown }));
