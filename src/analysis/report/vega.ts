/** Renders Vega-Lite specs to inline SVG in Node (no canvas, no browser, no network). */
import * as vega from 'vega';
import * as vl from 'vega-lite';

export type ChartSpec = vl.TopLevelSpec;

const CONFIG: vl.Config = {
  font: 'system-ui, sans-serif',
  axis: { labelFontSize: 11, titleFontSize: 12 },
  legend: { labelFontSize: 11, titleFontSize: 12, labelLimit: 260 },
  view: { stroke: '#ddd' },
};

export async function renderSvg(spec: ChartSpec): Promise<string> {
  const compiled = vl.compile({ ...spec, config: { ...CONFIG, ...(spec.config ?? {}) } } as ChartSpec).spec;
  // Loader without network or file access: every dataset is inlined in the spec.
  const view = new vega.View(vega.parse(compiled), { renderer: 'none', loader: vega.loader({ mode: 'http' }) });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}
