/** Which backend a campaign's workers train on, decided once by the coordinator without starting TensorFlow itself. */
import { createRequire } from 'node:module';
import { TORCH_MISSING, torchAddonBuilt } from '../training/engines/torch.js';
import { UserError } from '../util/errors.js';
import type { TrainSettings } from '../training/types.js';
import type { EngineName } from '../training/engine-names.js';

export type ConcreteBackend = EngineName;

function installed(pkg: string): boolean {
  try {
    createRequire(import.meta.url).resolve(pkg);
    return true;
  } catch {
    return false;
  }
}

/**
 * 'auto' picks torch where the libtorch addon is built, then native TensorFlow when a native package is installed (its trials then run in child processes),
 * else wasm on worker threads. Workers start the backend themselves; a broken native install fails the trials
 * with the reason, and `--backend wasm` is the way around it.
 */
export function resolveCampaignBackend(requested: TrainSettings['backend']): { backend: ConcreteBackend; reason: string } {
  if (requested === 'torch' && !torchAddonBuilt()) throw new UserError(`--backend torch: ${TORCH_MISSING}`);
  if (requested !== 'auto') return { backend: requested, reason: `${requested}: requested` };
  if (torchAddonBuilt()) return { backend: 'torch', reason: 'torch: the libtorch addon is built' };
  const native = ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node'].find(installed);
  if (native) return { backend: 'tensorflow', reason: `tensorflow: ${native} is installed (one child process per GPU)` };
  return { backend: 'wasm', reason: 'wasm: no native TensorFlow package is installed (one worker thread per core)' };
}
