/** serve over a 10,000-trial store: how long a store change takes to reach a page, and how large the payloads are. */
import { join } from 'node:path';
import { openCampaign } from '../src/campaign/store.js';
import { startServer } from '../src/serve/server.js';
import { RunWatcher } from '../src/serve/watch.js';
import { syntheticCampaign, writeSyntheticStore } from '../test/analysis-fixtures.js';
import { tempDir } from '../test/campaign-helpers.js';
import { median } from './lib/common.js';

const N = Number(process.env.SERVE_BENCH_TRIALS ?? 10_000);
const CHANGES = 20;
const kb = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
const ms = (n: number) => `${n.toFixed(1)} ms`;

const dir = join(tempDir('serve-bench'), 'run');
let t = performance.now();
// All but the last CHANGES trials trained; those are started and finished one by one below, as a coordinator would.
await writeSyntheticStore(dir, syntheticCampaign({ n: N }), N - CHANGES);
console.log(`store: ${N} trials written in ${((performance.now() - t) / 1000).toFixed(1)} s`);

// The watcher alone: a full read (the first load) against an incremental poll after one change.
t = performance.now();
const w = new RunWatcher(dir);
const fullRead = performance.now() - t;
const quiet: number[] = [];
for (let i = 0; i < 50; i++) {
  t = performance.now();
  w.poll();
  quiet.push(performance.now() - t);
}
w.close();

const server = await startServer({ dirs: [dir], host: '127.0.0.1', port: 0, pollMs: 100 });
const events = await fetch(`${server.url}events`);
const reader = events.body!.getReader();
const decoder = new TextDecoder();
let buffered = '';
/** Resolves at the next `change` event. */
async function nextEvent(): Promise<void> {
  for (;;) {
    const i = buffered.indexOf('event: change');
    if (i >= 0) {
      buffered = buffered.slice(buffered.indexOf('\n\n', i) + 2);
      return;
    }
    const { value } = await reader.read();
    buffered += decoder.decode(value);
  }
}
await nextEvent();
const page = await (await fetch(`${server.url}run/0/`)).text();
t = performance.now();
const firstLive = await (await fetch(`${server.url}run/0/live.json`)).text();
const firstLiveMs = performance.now() - t;

const store = openCampaign(dir);
const toEvent: number[] = [];
const toLive: number[] = [];
const liveBytes: number[] = [];
for (let i = N - CHANGES; i < N; i++) {
  const a = store.start(i, { worker: 'bench', leaseMs: 60_000, maxAttempts: 2 });
  await nextEvent();
  store.finish(a, { status: 'complete', valError: 0.2, testError: 0.2, trainLoss: 0.1, curves: [], wallSeconds: 1, backend: 'bench' }, 'bench');
  const written = performance.now();
  await nextEvent();
  toEvent.push(performance.now() - written);
  const body = await (await fetch(`${server.url}run/0/live.json`)).text();
  toLive.push(performance.now() - written);
  liveBytes.push(body.length);
}
store.close();
const watcher = server.watchers[0];

// The full report analysis runs in a child process; the server stays responsive meanwhile.
t = performance.now();
let analysis = '';
const during: number[] = [];
for (;;) {
  const q = performance.now();
  const r = await fetch(`${server.url}run/0/analysis.json`);
  during.push(performance.now() - q);
  if (r.status === 200) {
    const body = await r.text();
    if ((JSON.parse(body) as { key: string }).key === `0:${watcher.version}`) {
      analysis = body;
      break;
    }
  } else await r.arrayBuffer();
  await new Promise((res) => setTimeout(res, 250));
}
const analysisMs = performance.now() - t;
await reader.cancel();
await server.close();

console.log(`watcher: first (full) read ${ms(fullRead)}; poll without a change ${ms(median(quiet))} median`);
console.log(`watcher after ${CHANGES} start+finish pairs: ${watcher.fullReads} full read(s) in all, ${watcher.lastReread} trial(s) reread by the last poll`);
console.log(`page shell ${kb(page.length)}; live.json first ${ms(firstLiveMs)}, ${kb(firstLive.length)}`);
console.log(`store write -> change event: median ${ms(median(toEvent))}, max ${ms(Math.max(...toEvent))} (poll every 100 ms)`);
console.log(`store write -> live.json received: median ${ms(median(toLive))}, max ${ms(Math.max(...toLive))}; live.json ${kb(median(liveBytes))}`);
console.log(`full analysis (child process) ready ${(analysisMs / 1000).toFixed(1)} s after the last change, ${kb(analysis.length)}; requests meanwhile answered in median ${ms(median(during))}, max ${ms(Math.max(...during))}`);
