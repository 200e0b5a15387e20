/**
 * How often refinement fires on noise for this example's round 0: the 48 validation errors are shuffled
 * across their real subnetworks 1,000 times (seeded) and the rules decided on each shuffle, at the defaults.
 * Writes null-rates.json. Run from the repository root:
 *   node --import tsx analysis/fmnist-resnet20/null-rates.ts [PERMUTATIONS]
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nullRefineRates } from '../../src/analysis/calibration.js';
import { observations } from '../../src/analysis/population.js';
import { complexity } from '../../src/complexity/count.js';
import { buildNet } from '../../src/nets/registry.js';
import { baseWidths } from '../../src/nets/resolve.js';
import { loadSpace } from '../../src/space/load.js';
import { campaignSeed, here, loadTrials, net } from './trials.js';

const permutations = Number(process.argv[2] ?? 1000);
const obs = observations(loadTrials()).filter((o) => o.round === 0);
const spec = buildNet(net);
const original = complexity(spec, baseWidths(spec));
const parent = loadSpace(join(here, 'space-r0.json'));
const started = Date.now();
const rates = nullRefineRates(parent, spec, original.flops / original.params, obs, { permutations, seed: 'fmnist-null', refine: { seed: campaignSeed } });
const result = { trials: obs.length, ...rates, seconds: (Date.now() - started) / 1000 };
console.log(JSON.stringify(result, null, 2));
writeFileSync(join(here, 'null-rates.json'), JSON.stringify(result, null, 2) + '\n');
