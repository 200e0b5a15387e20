/**
 * Inference timing in headless Chromium: the exported ONNX file on ONNX Runtime Web (wasm) and the saved tfjs model on
 * tfjs (wasm), both served from a loopback HTTP server started here; the page may request nothing else.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { NetSpec } from '../nets/types.js';
import { randomBatch, readSaved, timePasses, type InferOptions, type InferTiming } from '../training/infer-bench.js';
import { METADATA_JSON, MODEL_JSON, WEIGHTS_BIN, type SavedMetadata } from '../training/save.js';
import { UserError } from '../util/errors.js';
import { packageDir } from '../util/package-file.js';
import type { ExportRecord } from './export.js';

export const BROWSER_ENGINES = ['onnxruntime-web', 'tfjs-wasm-web'] as const;
export type BrowserEngine = (typeof BROWSER_ENGINES)[number];
export const DEFAULT_CHROMIUM = '/usr/bin/chromium';

/** How the page ran: the browser, the runtimes, their wasm threads and every URL the page requested. */
export interface BrowserInfo {
  chromium: string;
  executable: string;
  ort: string;
  tfjs: string;
  ortThreads: number;
  tfjsThreads: number;
  crossOriginIsolated: boolean;
  requests: string[];
}

export interface BrowserTiming extends InferTiming {
  /** Logits of the batch-1 timing input (randomBatch(spec, 1)), computed in the page. */
  logits: number[];
}

/** A saved model ready for the browser: its network and the ONNX export it is timed on. */
interface BrowserModel {
  dir: string;
  metadata: SavedMetadata;
  spec: NetSpec;
  onnx: ExportRecord;
}

/** The Chromium to run: PRUNESPACE_CHROMIUM, else /usr/bin/chromium; it must exist. */
export function chromiumPath(): string {
  const env = process.env.PRUNESPACE_CHROMIUM;
  const path = env !== undefined && env !== '' ? env : DEFAULT_CHROMIUM;
  if (!existsSync(path)) {
    throw new UserError(`--browser: no Chromium at ${path} (${env ? 'PRUNESPACE_CHROMIUM' : 'the default'}); set PRUNESPACE_CHROMIUM to a Chromium executable`);
  }
  return path;
}

/** The model's latest ONNX export with a dynamic batch (throughput needs batches other than 1), checked to exist. */
export function browserModel(dir: string): BrowserModel {
  const { metadata, spec } = readSaved(dir);
  const records = ((metadata as SavedMetadata & { exports?: ExportRecord[] }).exports ?? []).filter((r) => r.format === 'onnx');
  const dynamic = records.filter((r) => r.batch === 'dynamic');
  const onnx = dynamic[dynamic.length - 1];
  if (!onnx) {
    const why = records.length ? 'only fixed-batch ONNX exports' : 'no ONNX export';
    throw new UserError(`${join(dir, METADATA_JSON)}: ${why}; run 'prunespace export ${dir} --onnx FILE' (dynamic batch) before --browser`);
  }
  if (!existsSync(onnx.file)) throw new UserError(`${join(dir, METADATA_JSON)}: its ONNX export ${onnx.file} is missing; export again`);
  return { dir, metadata, spec, onnx };
}

/** NHWC pixels as the export's layout wants them. */
function inLayout(x: Float32Array, size: number, shape: [number, number, number], layout: 'nhwc' | 'nchw'): Float32Array {
  if (layout === 'nhwc') return x;
  const [h, w, c] = shape;
  const out = new Float32Array(x.length);
  for (let b = 0; b < size; b++)
    for (let y = 0; y < h; y++) for (let i = 0; i < w; i++) for (let k = 0; k < c; k++) out[((b * c + k) * h + y) * w + i] = x[((b * h + y) * w + i) * c + k];
  return out;
}

/** The page script sits beside this module in src/; built modules in dist/ read it from src/. */
function pageScript(): Buffer {
  const here = dirname(fileURLToPath(import.meta.url));
  const beside = join(here, 'browser-page.js');
  return readFileSync(existsSync(beside) ? beside : join(here, '../../src/export/browser-page.js'));
}

const PAGE = '<!doctype html><meta charset="utf-8"><title>prunespace bench-infer</title><body>' +
  '<script src="/tfjs/tf.min.js"></script><script src="/tfjs/tf-backend-wasm.min.js"></script><script type="module" src="/bench.js"></script></body>';

const TYPES: Record<string, string> = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.json': 'application/json', '.html': 'text/html' };

/** Every path the page may fetch, and the file behind it. */
function routes(models: BrowserModel[]): Map<string, string | Buffer> {
  const ortDist = join(packageDir('onnxruntime-web'), 'dist');
  const tf = join(packageDir('@tensorflow/tfjs'), 'dist');
  const tfWasm = join(packageDir('@tensorflow/tfjs-backend-wasm'), 'dist');
  const map = new Map<string, string | Buffer>([
    ['/', Buffer.from(PAGE)],
    ['/bench.js', pageScript()],
    // Chromium asks for one whatever the page says; an empty answer keeps a 404 out of the page's errors.
    ['/favicon.ico', Buffer.alloc(0)],
    ['/tfjs/tf.min.js', join(tf, 'tf.min.js')],
    ['/tfjs/tf-backend-wasm.min.js', join(tfWasm, 'tf-backend-wasm.min.js')],
  ]);
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) map.set(`/tfjs/${f}`, join(tfWasm, f));
  for (const f of ['ort.wasm.min.mjs', 'ort-wasm-simd-threaded.mjs', 'ort-wasm-simd-threaded.wasm']) map.set(`/ort/${f}`, join(ortDist, f));
  models.forEach((m, i) => {
    map.set(`/model/${i}/${MODEL_JSON}`, join(m.dir, MODEL_JSON));
    map.set(`/model/${i}/${WEIGHTS_BIN}`, join(m.dir, WEIGHTS_BIN));
    map.set(`/model/${i}/model.onnx`, m.onnx.file);
  });
  return map;
}

/**
 * A loopback server of the routes. It sends cross-origin isolation headers, so the page may run wasm threads when
 * asked; whether it does is what the runtimes report.
 */
async function serve(map: Map<string, string | Buffer>): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const body = map.get(path);
    const headers = { 'Cross-Origin-Opener-Policy': 'same-origin', 'Cross-Origin-Embedder-Policy': 'require-corp', 'Cache-Control': 'no-store' };
    if (body === undefined) {
      res.writeHead(404, headers).end();
      return;
    }
    const ext = path === '/' ? '.html' : path.slice(path.lastIndexOf('.'));
    res.writeHead(200, { ...headers, 'Content-Type': TYPES[ext] ?? 'application/octet-stream' });
    res.end(typeof body === 'string' ? readFileSync(body) : body);
  });
  await new Promise<void>((ok, fail) => server.once('error', fail).listen(0, '127.0.0.1', ok));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

/** The line that names a browser engine and how it runs. */
function describe(engine: BrowserEngine, info: BrowserInfo): string {
  const threads = engine === 'onnxruntime-web' ? info.ortThreads : info.tfjsThreads;
  const runtime = engine === 'onnxruntime-web' ? `onnxruntime-web ${info.ort} (wasm execution provider)` : `tfjs ${info.tfjs} (wasm backend)`;
  const isolation = info.crossOriginIsolated ? 'cross-origin isolated' : 'not cross-origin isolated';
  return `engine: ${runtime} in headless Chromium ${info.chromium}, ${threads} wasm thread${threads === 1 ? '' : 's'} (page ${isolation}), served from loopback`;
}

/**
 * Times every model on both browser engines in one headless Chromium. All directories are checked first, so bad
 * input fails before anything starts.
 */
export async function benchBrowser(dirs: string[], threads: number, o: InferOptions, say: (line: string) => void): Promise<{ engine: BrowserEngine; info: BrowserInfo; rows: BrowserTiming[] }[]> {
  const models = dirs.map(browserModel);
  const executable = chromiumPath();
  const { chromium } = await import('playwright-core');
  const { url, server } = await serve(routes(models));
  let browser: Awaited<ReturnType<typeof chromium.launch>> | undefined;
  try {
    try {
      browser = await chromium.launch({
        executablePath: executable,
        // No network beyond loopback: every other host name fails to resolve.
        args: ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'],
      });
    } catch (e) {
      throw new UserError(`--browser: cannot start Chromium at ${executable} (${(e as Error).message.split('\n')[0]})`);
    }
    const page = await browser.newPage();
    const requests: string[] = [];
    const problems: string[] = [];
    page.on('request', (r) => void (requests.includes(r.url()) || requests.push(r.url())));
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('response', (r) => r.status() >= 400 && problems.push(`${r.url()}: HTTP ${r.status()}`));
    await page.goto(`${url}/`);
    await page.waitForSelector('body[data-ready="1"]', { state: 'attached', timeout: 30_000 }).catch(() => {
      throw new Error(`the benchmark page did not start: ${problems.join('; ') || 'no error reported'}`);
    });
    const started = await page.evaluate((n) => (globalThis as any).prunespaceBench.start(n), threads);
    const info: BrowserInfo = { chromium: browser.version(), executable, requests, ...started };
    const out: { engine: BrowserEngine; info: BrowserInfo; rows: BrowserTiming[] }[] = [];
    for (const engine of BROWSER_ENGINES) {
      say(describe(engine, info));
      const rows: BrowserTiming[] = [];
      for (const [i, m] of models.entries()) {
        const shape = m.spec.ref.input;
        const layout = engine === 'onnxruntime-web' ? m.onnx.layout : 'nhwc';
        const inputs = [1, o.batch].map((size) => [size, Array.from(inLayout(randomBatch(m.spec, size), size, shape, layout))] as const);
        const spec = {
          url: `${url}/model/${i}/${engine === 'onnxruntime-web' ? 'model.onnx' : MODEL_JSON}`,
          inputs,
          shape,
          layout,
          ...m.onnx.normalisation,
        };
        await page.evaluate(([e, s]) => (globalThis as any).prunespaceBench.load(e, s), [engine, spec] as const);
        const timing = await timePasses(m.dir, m.spec, m.metadata.widths, (count, size) => page.evaluate(([c, s]) => (globalThis as any).prunespaceBench.passes(c, s) as Promise<number>, [count, size]), o);
        const logits = await page.evaluate(() => (globalThis as any).prunespaceBench.logits() as Promise<number[]>);
        rows.push({ ...timing, logits });
      }
      await page.evaluate(() => (globalThis as any).prunespaceBench.unload());
      out.push({ engine, info, rows });
    }
    if (problems.length) throw new Error(`the benchmark page reported errors: ${problems.join('; ')}`);
    // blob: URLs of this origin are the page's own memory (the runtimes start their wasm thread workers from them).
    const away = requests.filter((r) => !r.startsWith(`${url}/`) && !r.startsWith(`blob:${url}/`));
    if (away.length) throw new Error(`the benchmark page requested URLs outside its loopback server: ${away.join(', ')}`);
    return out;
  } finally {
    await browser?.close();
    await new Promise((ok) => server.close(ok));
  }
}
