/** Child of engine-torch-isa.test.ts: the torch engine, under the ONEDNN_MAX_CPU_ISA it was started with, recomputes given tfjs trajectories. */
import { readFileSync } from 'node:fs';
import { deserialize } from 'node:v8';
import { startTorch } from '../src/training/engines/torch.js';
import { compareWithTorch, type Trajectory } from './torch-equivalence.js';

const t = startTorch(1, { cpuOnly: true });
if (!t.ok) throw new Error(t.detail);
const trajectories = deserialize(readFileSync(process.argv[2])) as Trajectory[];
const out = [];
for (const tr of trajectories) out.push(await compareWithTorch(t.engine, tr));
console.log(JSON.stringify(out));
