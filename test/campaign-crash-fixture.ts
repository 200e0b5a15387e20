/**
 * A trial module for the crash tests: trains like the real one, except that every trial whose seed is divisible by
 * 3 kills its worker the way the environment variable CAMPAIGN_CRASH says ('exit': the process or thread exits,
 * 'oom': it exhausts its heap).
 */
import { runTrial as realRunTrial } from '../src/training/trial.js';
import type { EpochCurve, TrialRequest, TrialResult } from '../src/training/types.js';

export async function runTrial(req: TrialRequest, onEpoch?: (c: EpochCurve) => void): Promise<TrialResult> {
  if (req.seed % 3 === 0) {
    if (process.env.CAMPAIGN_CRASH === 'oom') {
      const hoard: number[][] = [];
      for (;;) hoard.push(new Array<number>(1e6).fill(1));
    }
    process.exit(3);
  }
  return realRunTrial(req, onEpoch);
}
