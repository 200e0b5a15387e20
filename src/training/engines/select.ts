/** Chooses the engine a trial trains on: the libtorch addon (CUDA, then CPU), else a tfjs backend; says which and why. */
import { UserError } from '../../util/errors.js';
import { selectBackend } from '../backends/select.js';
import type { Engine } from '../engine.js';
import type { TrainSettings } from '../types.js';
import { tfjsEngine } from './tfjs.js';

export interface SelectedEngine {
  engine: Engine;
  /** One line: which engine runs and why. */
  reason: string;
}

export interface EngineOptions {
  /** Intra-op threads of a native engine (default 1: one worker per core). */
  threads?: number;
}

/** Starts the engine for a backend name (cached per process by the backends it starts). */
export async function selectEngine(name: TrainSettings['backend'], opts: EngineOptions = {}): Promise<SelectedEngine> {
  const torch = await import('./torch.js');
  if (name === 'torch') {
    const t = torch.startTorch(opts.threads ?? 1);
    if (!t.ok) throw new UserError(`--backend torch: ${t.detail}`);
    return { engine: t.engine, reason: `torch: requested (${t.detail})` };
  }
  if (name === 'auto') {
    const t = torch.startTorch(opts.threads ?? 1);
    if (t.ok) return { engine: t.engine, reason: `torch (${t.detail}): the fastest engine here` };
    const b = await selectBackend('auto');
    return { engine: tfjsEngine(b), reason: `${b.reason}; not torch: ${t.detail}` };
  }
  const b = await selectBackend(name);
  return { engine: tfjsEngine(b), reason: b.reason };
}
