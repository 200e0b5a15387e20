/** Writes a campaign report: report.html (self-contained) with the CSV behind every plot and table beside it. */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { stringify } from 'csv-stringify/sync';
import type { CampaignAnalysis } from '../analyse.js';
import type { ReferenceComparison } from '../reference.js';
import { buildReport, type ReportCampaign, type ReportOptions } from './build.js';
import type { Plot, Row } from './charts.js';
import { pageHtml, plotHtml } from './page.js';
import { renderSvg } from './vega.js';

export type { ReportCampaign, ReportOptions } from './build.js';

export interface WrittenReport {
  html: string;
  files: string[];
  analysis: CampaignAnalysis;
  /** The best candidates against the uniform reference; null without reference trials. */
  reference: ReferenceComparison | null;
  /** Plots left out for lack of data, with the reason. */
  missing: { plot: string; reason: string }[];
}

/** Rows as CSV text, columns in the first row's order. */
export function csvText(rows: readonly Row[]): string {
  const columns = rows.length ? Object.keys(rows[0]) : [];
  return stringify(rows as Row[], { header: true, columns: columns.length ? columns : undefined });
}

function writeCsv(dir: string, file: string, rows: readonly Row[]): string {
  const path = join(dir, file);
  writeFileSync(path, csvText(rows));
  return path;
}

export async function writeReport(main: ReportCampaign, outDir: string, options: ReportOptions = {}): Promise<WrittenReport> {
  mkdirSync(outDir, { recursive: true });
  const built = buildReport(main, options);
  const files: string[] = [];
  const svgs = new Map<string, string | null>();
  for (const p of built.plots) {
    for (const d of p.data) files.push(writeCsv(outDir, d.file, d.rows));
    svgs.set(p.id, p.spec && !p.missing ? await renderSvg(p.spec) : null);
  }
  for (const t of built.tables) files.push(writeCsv(outDir, t.file, t.rows));
  const sections = built.sections((p: Plot) => plotHtml(p, svgs.get(p.id) ?? null));
  const htmlPath = join(outDir, 'report.html');
  writeFileSync(htmlPath, pageHtml(`prunespace report: ${main.name}`, built.meta, sections));
  writeFileSync(join(outDir, 'summary.json'), JSON.stringify(built.summary, null, 2) + '\n');
  files.push(join(outDir, 'summary.json'));
  const missing = built.plots.filter((p) => p.missing).map((p) => ({ plot: p.id, reason: p.missing as string }));
  return { html: htmlPath, files, analysis: built.analysis, reference: built.reference, missing };
}
