/** Child process of `serve`: builds a run's full report (bootstraps included) off the server's event loop. */
import { loadCampaign } from '../analysis/campaign.js';
import { buildReport, reportCampaign } from '../analysis/report/build.js';
import { chartHtml, livePlot } from './live.js';
import type { AnalysisRequest, AnalysisResult } from './analysis.js';

process.on('message', (m: AnalysisRequest) => {
  try {
    const [main, ...compare] = [m.dirs[m.main], ...m.dirs.filter((_, i) => i !== m.main)].map((d) => reportCampaign(loadCampaign(d)));
    const built = buildReport(main, { compare });
    const result: AnalysisResult = {
      key: m.key,
      complete: built.analysis.obs.length,
      meta: built.meta,
      // The live view draws these two as they change; the rest waits for the next analysis.
      sections: built.sections(chartHtml).filter((s) => s.id !== 'reference' && s.id !== 'edf'),
      plots: built.plots.filter((p) => p.id !== 'edf').map(livePlot),
      csv: Object.fromEntries([...built.plots.flatMap((p) => p.data), ...built.tables].map((d) => [d.file, d.rows])),
    };
    process.send!(result);
  } catch (e) {
    process.send!({ key: m.key, error: (e as Error).message } satisfies Partial<AnalysisResult>);
  }
});
