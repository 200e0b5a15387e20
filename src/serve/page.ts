/** The page `serve` sends: a shell the client script fills from the live and analysis JSON (every value escaped). */
import { escapeHtml as esc } from '../analysis/report/escape.js';

export const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; color: #222; max-width: 1180px; margin: 24px auto; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 4px; } h2 { font-size: 18px; margin-top: 32px; border-bottom: 1px solid #ddd; }
.meta { color: #555; } .missing { color: #a15c00; background: #fff6e5; padding: 8px 12px; border-radius: 4px; }
table { border-collapse: collapse; margin: 8px 0; font-size: 12.5px; } th, td { border: 1px solid #ddd; padding: 3px 7px; text-align: right; }
th { background: #f4f4f4; } td:first-child, th:first-child { text-align: left; }
table.failures td:last-child { text-align: left; font-family: ui-monospace, monospace; font-size: 11.5px; white-space: pre-wrap; max-width: 640px; }
table.best td:last-child { text-align: left; font-family: ui-monospace, monospace; font-size: 11.5px; }
figure.plot { margin: 12px 0; overflow-x: auto; } figcaption { color: #555; font-size: 12.5px; }
.bar { display: inline-block; width: 160px; height: 10px; background: #eee; border-radius: 5px; vertical-align: middle; overflow: hidden; }
.bar > span { display: block; height: 100%; background: #4c78a8; }
#connection { font-size: 12px; color: #777; } #connection.lost { color: #b00; }
a.main { font-weight: bold; }
`;

export function shellHtml(runNames: readonly string[], main: number): string {
  const title = `prunespace serve: ${runNames[main]}`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'self' 'unsafe-eval'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:">
<title>${esc(title)}</title><link rel="stylesheet" href="/assets/style.css"></head>
<body data-main="${main}"><h1>${esc(title)}</h1>
<p id="connection">connecting…</p>
<section><h2>Runs</h2><div id="runs"></div></section>
<section><h2>Best against the uniform reference</h2><div id="reference"></div></section>
<section><h2>Error distributions</h2><div id="edf"></div></section>
<section><h2>Live training curves</h2><div id="curves"></div></section>
<section><h2>Failures</h2><div id="failures"></div></section>
<section><h2>Full analysis</h2><div id="analysis-meta"><p class="missing">The analysis is being computed…</p></div><div id="analysis"></div></section>
<script src="/assets/vega.js"></script><script src="/assets/vega-lite.js"></script><script src="/assets/app.js"></script>
</body></html>
`;
}
