/** Trial module for shared-data.test.ts: the real trial, plus whether the thread read its pixels from shared memory. */
import { buildNet } from '../src/nets/registry.js';
import { loadData } from '../src/training/data/load.js';
import { runTrial as realTrial } from '../src/training/trial.js';
import type { EpochCurve, TrialRequest, TrialResult } from '../src/training/types.js';

export async function runTrial(req: TrialRequest, onEpoch?: (c: EpochCurve) => void): Promise<TrialResult & { sharedPixels: boolean }> {
  const result = await realTrial(req, onEpoch);
  const { input, classes } = buildNet(req.net).ref;
  const data = loadData(req.settings.data, { shape: input, classes });
  return { ...result, sharedPixels: data.train.source.images.buffer instanceof SharedArrayBuffer && data.test.source.labels.buffer instanceof SharedArrayBuffer };
}
