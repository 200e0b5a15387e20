/** Child-process worker entry: native TensorFlow is not safe in worker threads, so each GPU gets its own process. */
import { loadRunTrial, outcomeOfThrow } from './executor.js';
import type { ProcessMessage, ProcessTaskMessage } from './process-pool.js';

if (!process.send) throw new Error('process-worker.ts must be started by the campaign process pool (fork with IPC)');
const send = (m: ProcessMessage) => process.send!(m);

// Ctrl-C reaches the whole process group; the coordinator decides what stops, so the child ignores it.
process.on('SIGINT', () => {});
// The coordinator is gone (kill -9, crash): nobody will read our result.
process.on('disconnect', () => process.exit(0));

process.on('message', (msg: ProcessTaskMessage) => {
  void (async () => {
    const started = performance.now();
    try {
      const runTrial = await loadRunTrial(msg.trialModule);
      const result = await runTrial(msg.request, (curve) => send({ type: 'epoch', id: msg.id, curve }));
      send({ type: 'result', id: msg.id, outcome: { result, worker: '' } });
    } catch (e) {
      send({ type: 'result', id: msg.id, outcome: outcomeOfThrow(e, '', started, msg.request.settings.backend) });
    }
  })();
});
send({ type: 'ready' });
