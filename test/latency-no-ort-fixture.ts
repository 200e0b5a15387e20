/** Child process of the latency-regime test: builds a latency model with onnxruntime-node made unresolvable. */
import { register } from 'node:module';
import { isUserError } from '../src/util/errors.js';

// Resolution of onnxruntime-node fails, as it does where the package or its binary is missing.
register(
  'data:text/javascript,' +
    encodeURIComponent(`export async function resolve(s, c, next) { if (s === 'onnxruntime-node') throw new Error("Cannot find package 'onnxruntime-node'"); return next(s, c); }`),
);
const { loadSpace } = await import('../src/space/load.js');
const { latencyModelFor } = await import('../src/cli/latency.js');
try {
  await latencyModelFor(loadSpace(process.argv[2]), { file: process.argv[3] });
  console.log('built');
} catch (e) {
  if (!isUserError(e)) throw e;
  process.stderr.write(`prunespace: ${e.message}\n`);
  process.exit(2);
}
