/** Piscina worker entry: trains one candidate at a time in a worker thread (wasm and cpu backends). */
import type { MessagePort } from 'node:worker_threads';
import { threadId } from 'node:worker_threads';
import { adoptSharedRaw, type SharedRawDataset } from '../training/data/load.js';
import type { TrialRequest } from '../training/types.js';
import { outcomeOfThrow, loadRunTrial, type TrialOutcome } from './executor.js';

export interface ThreadTask {
  request: TrialRequest;
  trialModule: string;
  /** Per-epoch curves travel back on this port while the trial runs. */
  progress: MessagePort;
  /** The trial's dataset in the pool's shared memory: the thread reads it in place instead of decoding its own copy. */
  data?: SharedRawDataset;
}

export default async function trainCandidate({ request, trialModule, progress, data }: ThreadTask): Promise<TrialOutcome> {
  const worker = `thread-${threadId}`;
  const started = performance.now();
  try {
    if (data) adoptSharedRaw(data);
    const runTrial = await loadRunTrial(trialModule);
    const result = await runTrial(request, (curve) => progress.postMessage(curve));
    return { result, worker };
  } catch (e) {
    return outcomeOfThrow(e, worker, started, request.settings.backend);
  } finally {
    progress.close();
  }
}
