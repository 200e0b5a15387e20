import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { test } from 'node:test';
import { writeReport } from '../src/analysis/report/write.js';
import { syntheticCampaign } from './analysis-fixtures.js';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--no-sandbox', '--headless', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'];

test('the report opens in headless chromium with no console errors and marks in every plot', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is absent (install Debian's chromium to run the browser test)` }, async () => {
  const { chromium } = await import('playwright-core');
  const dir = mkdtempSync(join(tmpdir(), 'report-browser-'));
  const main = syntheticCampaign({ n: 80, name: 'main' });
  const other = syntheticCampaign({ n: 40, seed: 5 });
  const evil = '<script>alert(1)</script>';
  const written = await writeReport(
    { name: evil, spaceName: evil, description: `${evil} & "quotes"`, net: main.config.net, seed: 1, trials: main.trials },
    dir,
    { compare: [{ name: 'other <b>', net: other.config.net, seed: 1, trials: other.trials }] },
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const page = await browser.newPage();
    const problems: string[] = [];
    page.on('console', (m) => m.type() === 'error' && problems.push(m.text()));
    page.on('pageerror', (e) => problems.push(String(e)));
    page.on('dialog', (d) => (problems.push(`dialog: ${d.message()}`), void d.dismiss()));
    // Any request beyond the file itself would be a network fetch the report must not make.
    page.on('request', (r) => r.url() !== pathToFileURL(written.html).href && problems.push(`request: ${r.url()}`));
    await page.goto(pathToFileURL(written.html).href, { waitUntil: 'load' });
    assert.deepEqual(problems, []);
    assert.equal(await page.locator('script').count(), 0);
    assert.equal(await page.title(), `prunespace report: ${evil}`);
    const plots = await page.$$eval('figure.plot', (figures) =>
      figures.map((f) => ({
        id: f.getAttribute('data-plot'),
        marks: f.querySelectorAll('svg g[class*="role-mark"] path, svg g[class*="role-mark"] line, svg g[class*="role-mark"] rect').length,
      })),
    );
    assert.deepEqual(plots.map((p) => p.id).sort(), ['bucket-edf', 'curves', 'edf', 'metric-bins', 'pareto', 'profile', 'ratio']);
    for (const p of plots) assert.ok(p.marks > 0, `plot ${p.id} has no rendered marks`);
    assert.equal(await page.locator('.no-plot').count(), 0);
  } finally {
    await browser.close();
  }
});
