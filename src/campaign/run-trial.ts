/**
 * The trial entry every executor loads (thread, process, and through them queue workers): label-free trials go to
 * the distillation (src/pruning, which training must not import), every other trial to training.
 */
import type { EpochCurve, TrialRequest, TrialResult } from '../training/types.js';

export async function runTrial(req: TrialRequest, onEpoch?: (c: EpochCurve) => void): Promise<TrialResult> {
  if (req.init?.mode === 'distill') return (await import('../pruning/distill/trial.js')).runDistillTrial(req, onEpoch);
  return (await import('../training/trial.js')).runTrial(req, onEpoch);
}
