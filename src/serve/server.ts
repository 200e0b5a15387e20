/** `serve`'s HTTP server (node:http): the page, its scripts from installed packages, live JSON, CSVs and server-sent events. */
import { randomBytes, timingSafeEqual } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { isIP, type AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { csvText } from '../analysis/report/write.js';
import { UserError } from '../util/errors.js';
import { packageFile } from '../util/package-file.js';
import { AnalysisRunner } from './analysis.js';
import { liveState } from './live.js';
import { STYLE, shellHtml } from './page.js';
import { RunWatcher } from './watch.js';

export interface ServeOptions {
  dirs: string[];
  host: string;
  port: number;
  /** Required of every request where given; generated where the host is not loopback and none is given. */
  token?: string;
  /** How often the stores' change counters are read, ms. */
  pollMs?: number;
  /** Least time between the starts of two full analyses, ms (each may take seconds on large runs). */
  analysisGapMs?: number;
}

export interface RunningServer {
  url: string;
  host: string;
  port: number;
  token: string | null;
  watchers: RunWatcher[];
  /** Store changes seen so far (each one an event to the pages). */
  version(): number;
  close(): Promise<void>;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || (isIP(host) === 4 && host.startsWith('127.'));
}

/** client.js sits beside this module in src/; built modules in dist/ read it from src/. */
function clientScript(): Buffer {
  const here = dirname(fileURLToPath(import.meta.url));
  const beside = join(here, 'client.js');
  return readFileSync(existsSync(beside) ? beside : join(here, '../../src/serve/client.js'));
}

function sameToken(given: string | undefined, token: string): boolean {
  if (!given) return false;
  const a = Buffer.from(given);
  const b = Buffer.from(token);
  return a.length === b.length && timingSafeEqual(a, b);
}

function givenToken(req: IncomingMessage, url: URL): string | undefined {
  const auth = req.headers.authorization;
  if (auth?.startsWith('Bearer ')) return auth.slice(7);
  const q = url.searchParams.get('token');
  if (q) return q;
  const cookie = (req.headers.cookie ?? '').split(';').map((c) => c.trim()).find((c) => c.startsWith('prunespace_token='));
  return cookie ? decodeURIComponent(cookie.slice('prunespace_token='.length)) : undefined;
}

export async function startServer(opts: ServeOptions): Promise<RunningServer> {
  if (!opts.dirs.length) throw new UserError('serve needs at least one run directory');
  if (!/^[A-Za-z0-9.:\-[\]]+$/.test(opts.host)) throw new UserError(`--host expects a host name or IP address, got '${opts.host}'`);
  const loopback = isLoopback(opts.host);
  const token = opts.token ?? (loopback ? null : randomBytes(18).toString('base64url'));
  const watchers: RunWatcher[] = [];
  try {
    for (const d of opts.dirs) watchers.push(new RunWatcher(d));
  } catch (e) {
    for (const w of watchers) w.close();
    throw e;
  }
  const assets: Record<string, { type: string; body: Buffer }> = {
    '/assets/vega.js': { type: 'text/javascript', body: packageFile('vega', 'build/vega.min.js') },
    '/assets/vega-lite.js': { type: 'text/javascript', body: packageFile('vega-lite', 'build/vega-lite.min.js') },
    '/assets/app.js': { type: 'text/javascript', body: clientScript() },
    '/assets/style.css': { type: 'text/css', body: Buffer.from(STYLE) },
  };
  const runner = new AnalysisRunner(watchers.map((w) => w.dir), opts.analysisGapMs ?? 5000);
  let version = 0;
  const live = new Map<number, { version: number; body: string }>();
  const analysisJson = new Map<number, { key: string; body: string }>();
  const wanted = new Set<number>([0]);
  const clients = new Set<ServerResponse>();
  const analysisKey = (main: number) => `${main}:${watchers.map((w) => w.version).join('.')}`;
  /** `change`: the stores changed; `analysis`: a full analysis finished. */
  const broadcast = (event = 'change') => {
    for (const c of clients) c.write(`event: ${event}\ndata: {"version":${version}}\n\n`);
  };
  runner.onResult = () => (live.clear(), broadcast('analysis'));

  const poll = () => {
    let changed = false;
    for (const w of watchers) changed = w.poll() || changed;
    if (changed) version++;
    for (const m of wanted) runner.request(m, analysisKey(m));
    if (changed) broadcast();
  };
  const timer = setInterval(poll, opts.pollMs ?? 1000);
  const keepAlive = setInterval(() => { for (const c of clients) c.write(': keep-alive\n\n'); }, 15_000);
  poll();

  const send = (res: ServerResponse, status: number, type: string, body: string | Buffer) => {
    res.writeHead(status, { 'content-type': `${type}; charset=utf-8`, 'cache-control': 'no-store', 'x-content-type-options': 'nosniff' });
    res.end(body);
  };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://serve');
    if (token !== null) {
      if (!sameToken(givenToken(req, url), token)) return send(res, 401, 'text/plain', 'prunespace serve: this server needs its token (?token=… once, or Authorization: Bearer …)\n');
      // The page's own requests (scripts, JSON, events) carry the token as a cookie.
      res.setHeader('set-cookie', `prunespace_token=${encodeURIComponent(token)}; HttpOnly; SameSite=Strict; Path=/`);
    } else if (!/^(localhost|127\.[0-9.]+|\[::1\])(:\d+)?$/.test(req.headers.host ?? '')) {
      // On loopback without a token, a page of another site must not reach the server through a rebound name.
      return send(res, 403, 'text/plain', 'prunespace serve: requests must name a loopback host\n');
    }
    if (req.method !== 'GET') return send(res, 405, 'text/plain', 'read-only\n');
    const asset = assets[url.pathname];
    if (asset) return send(res, 200, asset.type, asset.body);
    if (url.pathname === '/favicon.ico') {
      res.writeHead(204);
      return res.end();
    }
    if (url.pathname === '/') {
      res.writeHead(302, { location: '/run/0/' });
      return res.end();
    }
    if (url.pathname === '/events') {
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
      res.write(`retry: 2000\nevent: change\ndata: {"version":${version}}\n\n`);
      clients.add(res);
      req.on('close', () => clients.delete(res));
      return;
    }
    const m = /^\/run\/(\d+)\/([A-Za-z0-9_.-]*)$/.exec(url.pathname);
    const main = m ? Number(m[1]) : -1;
    if (!m || main >= watchers.length) return send(res, 404, 'text/plain', 'not found\n');
    const file = m[2];
    if (file === '') {
      wanted.add(main);
      runner.request(main, analysisKey(main));
      return send(res, 200, 'text/html', shellHtml(watchers.map((w) => w.name), main));
    }
    if (file === 'live.json') {
      let cached = live.get(main);
      if (cached?.version !== version) {
        cached = { version, body: JSON.stringify({ version, analysis: runner.latest(main)?.key ?? null, ...liveState(watchers, main) }) };
        live.set(main, cached);
      }
      return send(res, 200, 'application/json', cached.body);
    }
    if (file === 'analysis.json') {
      const a = runner.latest(main);
      wanted.add(main);
      runner.request(main, analysisKey(main));
      if (!a) return send(res, 202, 'application/json', '{"pending":true}');
      // Serialised once per result; the CSV rows stay on the server (the page's links fetch them).
      if (analysisJson.get(main)?.key !== a.key) analysisJson.set(main, { key: a.key, body: JSON.stringify({ ...a, csv: undefined }) });
      return send(res, 200, 'application/json', analysisJson.get(main)!.body);
    }
    const rows = file.endsWith('.csv') ? (file === 'live-curves.csv' ? null : runner.latest(main)?.csv[file]) : undefined;
    if (rows) return send(res, 200, 'text/csv', csvText(rows));
    return send(res, 404, 'text/plain', 'not found\n');
  };

  const server = createServer((req, res) => {
    try {
      handle(req, res);
    } catch (e) {
      if (!res.headersSent) send(res, 500, 'text/plain', `prunespace serve: ${(e as Error).message}\n`);
    }
  });
  const close = async () => {
    clearInterval(timer);
    clearInterval(keepAlive);
    for (const c of clients) c.end();
    runner.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    for (const w of watchers) w.close();
  };
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(opts.port, opts.host, () => resolve());
    });
  } catch (e) {
    await close().catch(() => {});
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UserError(`--port ${opts.port}: already in use on ${opts.host}`);
    if (code === 'EACCES') throw new UserError(`--port ${opts.port}: not allowed to listen on it (ports below 1024 need privileges)`);
    if (code === 'ENOTFOUND' || code === 'EADDRNOTAVAIL' || code === 'EAI_AGAIN') throw new UserError(`--host ${opts.host}: no such local address (${code})`);
    throw new UserError(`cannot listen on ${opts.host}:${opts.port} (${(e as Error).message})`);
  }
  const port = (server.address() as AddressInfo).port;
  const shown = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  return { url: `http://${shown}:${port}/`, host: opts.host, port, token, watchers, version: () => version, close };
}
