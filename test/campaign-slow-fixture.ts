/** A trial module for the timeout tests: trials with an odd seed never finish; the others complete at once. */
import type { TrialRequest, TrialResult } from '../src/training/types.js';

export async function runTrial(req: TrialRequest): Promise<TrialResult> {
  if (req.seed % 2 === 1) await new Promise((r) => setTimeout(r, 600_000));
  return { status: 'complete', valError: 0.5, testError: 0.5, curves: [], wallSeconds: 0, backend: req.settings.backend };
}
