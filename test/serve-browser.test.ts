/** serve in headless chromium over a real campaign: the complete count rises to the store's, the EDF has marks, names are escaped. */
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { openCampaign } from '../src/campaign/store.js';
import { startServer } from '../src/serve/server.js';
import { ROOT, cliProcess, exited, tempDir, tinyFlags, waitFor, writeTinySpace } from './campaign-helpers.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];
const EVIL = 'run-<img src=x onerror=alert(1)>';
/** Where the screenshot for README goes; set SERVE_SCREENSHOT=1 to refresh it. */
const SCREENSHOT = join(ROOT, 'docs/serve.png');

function completeInStore(dir: string): number | undefined {
  if (!existsSync(join(dir, 'campaign.db'))) return undefined;
  const r = openCampaign(dir, { readonly: true });
  try {
    return r.counts().complete;
  } finally {
    r.close();
  }
}

test('serve follows a running campaign in headless chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent` }, async () => {
  const { chromium } = await import('playwright-core');
  const dir = tempDir('serve-browser');
  const out = join(dir, EVIL);
  const samples = 6;
  const search = cliProcess(['search', writeTinySpace(dir), '--samples', String(samples), '--workers', '1', '--out', out, '--no-reference', ...tinyFlags(128, 2)]);
  let stderr = '';
  search.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  await waitFor(() => completeInStore(out) !== undefined, 60_000);
  const server = await startServer({ dirs: [out], host: '127.0.0.1', port: 0, pollMs: 200, analysisGapMs: 1000 });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 1400 } });
    const problems: string[] = [];
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('dialog', (d) => (problems.push(`dialog: ${d.message()}`), void d.dismiss()));
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    // Every script and style comes from the server itself.
    page.on('request', (r) => !r.url().startsWith(server.url) && problems.push(`request: ${r.url()}`));
    await page.goto(`${server.url}run/0/`);
    const shown = () => page.locator('.count-complete').first().textContent().then(Number);
    await page.waitForSelector('.count-complete', { timeout: 30_000 });
    const { code } = await exited(search);
    assert.equal(code, 0, stderr);
    const stored = completeInStore(out)!;
    assert.equal(stored, samples);
    // The count rises without a reload, pushed by server-sent events.
    const seen: number[] = [];
    for (let i = 0; i < 300; i++) {
      seen.push(await shown());
      if (seen[seen.length - 1] === stored) break;
      await page.waitForTimeout(100);
    }
    assert.equal(seen[seen.length - 1], stored, `complete trials on the page: ${seen.join(',')}`);
    const edfMarks = () => page.locator('figure[data-plot="edf"] svg g[class*="role-mark"] path').count();
    await waitFor(async () => (await edfMarks()) > 0, 30_000);
    // The full analysis arrives from the background and draws its charts too.
    await page.waitForSelector('figure[data-plot="pareto"] svg g[class*="role-mark"] path', { timeout: 60_000 });
    assert.equal(await page.title(), `prunespace serve: ${EVIL}`);
    assert.equal(await page.locator('img').count(), 0, 'the markup in the run name stays text');
    assert.match((await page.locator('a.main').textContent()) ?? '', /run-<img src=x onerror=alert\(1\)>/);
    assert.deepEqual(problems, []);
    if (process.env.SERVE_SCREENSHOT) {
      mkdirSync(join(ROOT, 'docs'), { recursive: true });
      await page.screenshot({ path: SCREENSHOT, fullPage: false });
    }
  } finally {
    await browser.close();
    await server.close();
    if (search.exitCode === null) search.kill('SIGKILL');
  }
});
