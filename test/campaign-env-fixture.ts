/** A trial module that reports the environment its worker process was started with (GPU pinning), instead of training. */
import type { TrialRequest, TrialResult } from '../src/training/types.js';

export async function runTrial(req: TrialRequest): Promise<TrialResult> {
  const env = `CUDA_VISIBLE_DEVICES=${process.env.CUDA_VISIBLE_DEVICES} TF_FORCE_GPU_ALLOW_GROWTH=${process.env.TF_FORCE_GPU_ALLOW_GROWTH}`;
  await new Promise((r) => setTimeout(r, 50));
  return { status: 'failed', error: env, curves: [], wallSeconds: 0.05, backend: req.settings.backend };
}
