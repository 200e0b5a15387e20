/** `prunespace bench-infer`: inference latency and throughput of saved models on one engine, against the first model. */
import { Option, type Command } from 'commander';
import { benchBrowser, browserModel, chromiumPath, type BrowserInfo } from '../../export/browser-bench.js';
import { selectEngine } from '../../training/engines/select.js';
import { benchInfer, readSaved, type InferOptions, type InferTiming } from '../../training/infer-bench.js';
import type { TrainSettings } from '../../training/types.js';
import { UserError } from '../../util/errors.js';
import { formatCount } from '../../util/format.js';
import { requireOrt } from '../ort.js';
import { intFlag, numberFlag } from '../parse.js';
import { ENGINE_CHOICES } from '../../training/engine-names.js';

const ENGINES = ['auto', 'torch', 'tensorflow', 'wasm', 'cpu', 'onnxruntime'] as const;
type EngineName = (typeof ENGINES)[number];

function engineList(value: string): EngineName[] {
  const names = value.split(',').map((s) => s.trim());
  const bad = names.find((n) => !(ENGINES as readonly string[]).includes(n));
  if (bad !== undefined) throw new UserError(`--engine: unknown engine '${bad}' (known: ${ENGINES.join(', ')})`);
  return names as EngineName[];
}

/** Times every model on one engine; says which engine and how it runs. */
async function timeOn(name: EngineName, dirs: string[], threads: number | undefined, o: InferOptions, say: (l: string) => void): Promise<{ engine: string; rows: InferTiming[] }> {
  const rows: InferTiming[] = [];
  if (name === 'onnxruntime') {
    await requireOrt('--engine onnxruntime');
    const { benchOrt, ortDescription } = await import('../../export/ort-bench.js');
    say(`engine: ${ortDescription(threads ?? 1)}`);
    for (const d of dirs) rows.push(await benchOrt(d, threads ?? 1, o));
    return { engine: 'onnxruntime', rows };
  }
  const { engine, reason } = await selectEngine(name, threads !== undefined ? { threads } : {});
  say(`engine: ${reason}`);
  for (const d of dirs) rows.push(await benchInfer(d, engine, o));
  return { engine: engine.name, rows };
}

interface Options {
  backend: TrainSettings['backend'];
  engine?: EngineName[];
  threads?: number;
  batch: number;
  repeats: number;
  minRepeatMs: number;
  warmup: number;
  json?: boolean;
  browser?: boolean;
}

/** Saving of a against the reference b, as a fraction (0.4 = 40% less). */
const saving = (a: number, b: number): number => 1 - a / b;

export function registerBenchInfer(program: Command): void {
  program
    .command('bench-infer')
    .description('Inference latency (batch 1) and throughput of saved models on one engine; the first model is the reference')
    .argument('<model-dirs...>', 'models saved by prunespace (the original first, then pruned ones)')
    .addOption(new Option('--backend <name>', 'engine: auto, torch, tensorflow, wasm or cpu').choices(ENGINE_CHOICES).default('auto'))
    .option('--engine <list>', `comma-separated engines to time in turn (${ENGINES.join(', ')}); default: --backend`, engineList)
    .option('--threads <n>', 'torch and onnxruntime: intra-op threads; --browser: wasm threads (default 1)', intFlag('--threads', { min: 1 }))
    .option('--batch <n>', 'throughput batch size', intFlag('--batch', { min: 1 }), 64)
    .option('--repeats <n>', 'timed repeats; the median is reported', intFlag('--repeats', { min: 1 }), 7)
    .option('--min-repeat-ms <ms>', 'forward passes per repeat are chosen to last about this long', numberFlag('--min-repeat-ms', { above: 0 }), 200)
    .option('--warmup <n>', 'untimed passes first', intFlag('--warmup', { min: 0 }), 3)
    .option('--browser', 'also time the exported ONNX file on onnxruntime-web and the tfjs model on tfjs, both wasm, in headless Chromium (PRUNESPACE_CHROMIUM, default /usr/bin/chromium)')
    .option('--json', 'print the timings as JSON')
    .action(async (dirs: string[], opts: Options) => {
      // Every directory is checked before any timing, so a typo fails at once.
      for (const d of dirs) readSaved(d);
      if (opts.browser) {
        for (const d of dirs) browserModel(d);
        chromiumPath();
      }
      const say = (line: string): void => void (opts.json ? process.stderr : process.stdout).write(line + '\n');
      const o: InferOptions = { batch: opts.batch, repeats: opts.repeats, minRepeatMs: opts.minRepeatMs, warmup: opts.warmup };
      const runs: { engine: string; rows: InferTiming[]; info?: BrowserInfo }[] = [];
      for (const name of opts.engine ?? [opts.backend]) runs.push(await timeOn(name, dirs, opts.threads, o, say));
      if (opts.browser) for (const r of await benchBrowser(dirs, opts.threads ?? 1, o, say)) runs.push(r);
      const out = [];
      for (const { engine, rows, info } of runs) {
        // Savings are against the first model on the same engine.
        const ref = rows[0];
        for (const r of rows) {
          const flopsSaving = saving(r.complexity.flops, ref.complexity.flops);
          const latencySaving = saving(r.latencyMs, ref.latencyMs);
          const throughputSaving = saving(ref.throughput, r.throughput);
          out.push({
            ...r,
            engine,
            flopsSaving,
            latencySaving,
            throughputSaving,
            // How much of the FLOPs saving shows as time saved (1 = all of it); undefined for the reference.
            latencyToFlops: flopsSaving > 0 ? latencySaving / flopsSaving : undefined,
            throughputToFlops: flopsSaving > 0 ? throughputSaving / flopsSaving : undefined,
            // Browser rows say how the page ran: Chromium, runtimes, wasm threads, every URL it requested.
            ...(info ? { browser: info } : {}),
          });
        }
      }
      if (opts.json) {
        console.log(JSON.stringify(out, null, 2));
        return;
      }
      const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
      say(`${'engine'.padEnd(15)} ${'model'.padEnd(32)} ${'FLOPs'.padStart(9)} ${'params'.padStart(8)} ${'b1 ms'.padStart(9)} ${'b1 IQR'.padStart(15)} ${`b${opts.batch} img/s`.padStart(11)} ${'FLOPs saved'.padStart(11)} ${'b1 saved'.padStart(9)} ${'thr saved'.padStart(9)} ${'b1/FLOPs'.padStart(8)}`);
      for (const r of out) {
        say(
          `${r.engine.padEnd(15)} ${r.dir.slice(-32).padEnd(32)} ${formatCount(r.complexity.flops).padStart(9)} ${formatCount(r.complexity.params).padStart(8)} ` +
            `${r.latencyMs.toFixed(3).padStart(9)} ${`${r.latencySpread[0].toFixed(3)}-${r.latencySpread[1].toFixed(3)}`.padStart(15)} ${r.throughput.toFixed(1).padStart(11)} ${pct(r.flopsSaving).padStart(11)} ` +
            `${pct(r.latencySaving).padStart(9)} ${pct(r.throughputSaving).padStart(9)} ${(r.latencyToFlops === undefined ? '-' : r.latencyToFlops.toFixed(2)).padStart(8)}`,
        );
      }
    });
}
