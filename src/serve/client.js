// The browser side of `prunespace serve`: follows the server's events and redraws the parts that changed.
// Text from the runs goes in through textContent; HTML fragments come escaped from the server.
(() => {
  'use strict';
  const main = Number(document.body.dataset.main);
  const base = `/run/${main}/`;
  const views = new Map();
  let liveSeen = -1, analysisSeen = null, liveBusy = false, liveAgain = false;

  const el = (tag, text, cls) => { const e = document.createElement(tag); if (text !== undefined) e.textContent = String(text); if (cls) e.className = cls; return e; };
  const pct = (x) => (x === null || x === undefined ? '–' : `${(100 * x).toFixed(2)}%`);
  const duration = (s) => {
    if (s === null || !Number.isFinite(s)) return '–';
    s = Math.round(s);
    return s < 60 ? `${s}s` : s < 3600 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
  };
  const table = (headers, rows, cls) => {
    const t = el('table', undefined, cls);
    const h = t.createTHead().insertRow();
    for (const x of headers) h.appendChild(el('th', x));
    const b = t.createTBody();
    for (const r of rows) { const tr = b.insertRow(); for (const c of r) { if (c instanceof Node) tr.insertCell().appendChild(c); else tr.insertCell().textContent = c === null || c === undefined ? '–' : String(c); } }
    return t;
  };

  async function draw(root, plots) {
    for (const p of plots) {
      const fig = root.querySelector(`figure[data-plot="${p.id}"] .chart`);
      if (!fig || !p.spec) continue;
      views.get(p.id)?.finalize();
      const view = new vega.View(vega.parse(vegaLite.compile(p.spec).spec), { renderer: 'svg', container: fig, hover: true });
      views.set(p.id, view);
      await view.runAsync();
    }
  }

  function runs(state) {
    const rows = state.runs.map((r, i) => {
      const name = el('a', r.name, i === main ? 'main' : '');
      name.href = `/run/${i}/`;
      const bar = el('span', undefined, 'bar'); const fill = el('span'); fill.style.width = `${(100 * r.done).toFixed(1)}%`; bar.appendChild(fill);
      const complete = el('span', r.counts.complete, 'count-complete'); complete.dataset.run = String(i);
      const rungs = r.rungs.length ? r.rungs.map((g) => `rung ${g.rung}: ${g.counts.complete}/${g.counts.total}`).join(', ') : '–';
      const roles = Object.entries(r.roles).map(([k, n]) => `${n} ${k}`).join(', ');
      return [name, complete, r.counts.running, r.counts.waiting, r.counts.failed, r.counts.total, bar, duration(r.etaSeconds), r.perHour === null ? '–' : r.perHour.toFixed(0),
        r.best ? `${pct(r.best.valError)} (#${r.best.index})` : '–', rungs, roles];
    });
    const root = document.getElementById('runs');
    root.replaceChildren(table(['run', 'complete', 'running', 'waiting', 'failed', 'total', 'progress', 'ETA', 'trials/hour', 'best val error', 'rungs', 'roles'], rows, 'runs'));
    const m = state.runs[main];
    if (m.running.length) root.appendChild(el('p', `running: ${m.running.map((t) => `#${t.index}${t.role !== 'sample' ? ` ${t.role}` : ''}${t.rung !== null ? ` rung ${t.rung}` : ''} (${t.epochs} epoch(s) done${t.worker ? `, ${t.worker}` : ''})`).join('; ')}`));
    const f = document.getElementById('failures');
    f.replaceChildren(m.failed
      ? table(['trial', 'role', 'rung', 'attempts', 'finished', 'error'], m.failures.map((t) => [t.index, t.role, t.rung, t.attempts, t.finishedAt, t.error]), 'failures')
      : el('p', 'No failed trials.'));
    if (m.failed > m.failures.length) f.appendChild(el('p', `${m.failures.length} newest of ${m.failed} failures shown.`));
  }

  async function loadLive() {
    if (liveBusy) { liveAgain = true; return; }
    liveBusy = true;
    try {
      const res = await fetch(`${base}live.json`);
      if (!res.ok) throw new Error(`live.json: ${res.status}`);
      const state = await res.json();
      runs(state);
      for (const id of ['reference', 'edf', 'curves']) document.getElementById(id).innerHTML = state.main[id];
      await draw(document.body, state.main.plots);
      document.body.dataset.liveVersion = state.version;
      if (state.analysis !== analysisSeen) await loadAnalysis(state.analysis);
    } finally {
      liveBusy = false;
      if (liveAgain) { liveAgain = false; void loadLive(); }
    }
  }

  async function loadAnalysis(key) {
    const res = await fetch(`${base}analysis.json`);
    if (res.status === 202) return;
    const a = await res.json();
    analysisSeen = key;
    const meta = document.getElementById('analysis-meta');
    if (a.error) { meta.replaceChildren(el('p', `The analysis failed: ${a.error}`, 'missing')); return; }
    meta.innerHTML = a.meta;
    meta.prepend(el('p', `As of ${a.complete} completed trials; it is recomputed in the background as trials finish.`, 'meta'));
    const root = document.getElementById('analysis');
    root.replaceChildren(...a.sections.map((s) => {
      const section = el('section'); const body = el('div');
      body.innerHTML = s.html;
      section.append(el('h3', s.title), body);
      return section;
    }));
    await draw(root, a.plots);
  }

  const events = new EventSource('/events');
  const status = document.getElementById('connection');
  events.addEventListener('change', () => void loadLive());
  events.addEventListener('analysis', () => void loadLive());
  events.onopen = () => { status.textContent = 'live: updates as the store changes'; status.className = ''; void loadLive(); };
  events.onerror = () => { status.textContent = 'connection lost; retrying…'; status.className = 'lost'; };
})();
