/** Sampler throughput: accepted ResNet-56 configurations per second on one core (target >= 10,000). */
import { compileSpace } from '../src/space/compile.js';
import { loadSpace } from '../src/space/load.js';
import { sampleSpace } from '../src/space/sampler.js';

const space = compileSpace(loadSpace('spaces/resnet56-cifar10.json'));
sampleSpace(space, 1000, 0); // warm up the JIT
const rates: number[] = [];
let acceptance = 0;
for (let run = 1; run <= 5; run++) {
  const start = process.hrtime.bigint();
  const result = sampleSpace(space, 20_000, run);
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  rates.push(result.configs.length / seconds);
  acceptance = result.acceptanceRate;
}
rates.sort((a, b) => a - b);
console.log(
  `sampler: resnet56-cifar10 (30 groups, 45-55% FLOPs): median ${Math.round(rates[2]).toLocaleString('en-US')} accepted configs/s ` +
    `(min ${Math.round(rates[0]).toLocaleString('en-US')}, acceptance ${(100 * acceptance).toFixed(1)}%, target >= 10,000)`,
);
