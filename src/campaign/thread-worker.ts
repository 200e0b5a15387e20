/** Piscina worker entry: trains one candidate at a time in a worker thread (wasm and cpu backends). */
import type { MessagePort } from 'node:worker_threads';
import { threadId } from 'node:worker_threads';
import type { TrialRequest } from '../training/types.js';
import { outcomeOfThrow, loadRunTrial, type TrialOutcome } from './executor.js';

export interface ThreadTask {
  request: TrialRequest;
  trialModule: string;
  /** Per-epoch curves travel back on this port while the trial runs. */
  progress: MessagePort;
}

export default async function trainCandidate({ request, trialModule, progress }: ThreadTask): Promise<TrialOutcome> {
  const worker = `thread-${threadId}`;
  const started = performance.now();
  try {
    const runTrial = await loadRunTrial(trialModule);
    const result = await runTrial(request, (curve) => progress.postMessage(curve));
    return { result, worker };
  } catch (e) {
    return outcomeOfThrow(e, worker, started, request.settings.backend);
  } finally {
    progress.close();
  }
}
