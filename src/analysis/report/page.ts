/** The report's HTML page: one self-contained file, inline CSS and inline SVG, no scripts and no fetches. */
import { escapeHtml as esc } from './escape.js';
import type { Plot } from './charts.js';

const CSS = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 1180px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .missing { color: #a15c00; background: #fff6e5; padding: 8px 12px; border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; } th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
table.best td:last-child { text-align: left; font-family: ui-monospace, monospace; font-size: 11.5px; }
figure.plot { margin: 12px 0; overflow-x: auto; } figcaption { color: #555; font-size: 12.5px; }
code { background: #f4f4f4; padding: 0 3px; }
`;

export function plotHtml(p: Plot, svg: string | null): string {
  const csv = p.data.map((d) => `<a href="${esc(d.file)}">${esc(d.file)}</a>`).join(', ');
  if (!svg || p.missing) {
    return `<div class="no-plot" data-plot="${esc(p.id)}"><p class="missing">${esc(p.title)}: not enough data — ${esc(p.missing ?? 'nothing to draw')}.</p></div>`;
  }
  // The SVG comes from Vega's renderer, which escapes the text it draws.
  return `<figure class="plot" id="plot-${esc(p.id)}" data-plot="${esc(p.id)}">${svg}<figcaption>${esc(p.title)}. Data: ${csv}</figcaption></figure>`;
}

export interface PageSection {
  /** Names the section for views that draw some sections apart ('reference', 'edf', 'ratio', …). */
  id?: string;
  title: string;
  /** Trusted HTML built by the report modules (values already escaped). */
  html: string;
}

export function pageHtml(title: string, metaHtml: string, sections: readonly PageSection[]): string {
  const body = sections.map((s) => `<section><h2>${esc(s.title)}</h2>\n${s.html}\n</section>`).join('\n');
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>${esc(title)}</title><style>${CSS}</style></head>
<body><h1>${esc(title)}</h1>
${metaHtml}
${body}
</body></html>
`;
}
