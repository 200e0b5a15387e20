/** The CLI side of latency regimes: builds a space's latency predictor on its target (the space layer cannot time anything). */
import type { BuildOptions, LatencyModel, NetworkFit } from '../export/latency-table.js';
import type { CampaignConfig } from '../campaign/types.js';
import type { LoadedSpace } from '../space/load.js';
import { requireOrt } from './ort.js';

export interface LatencyTableFlags {
  latencyTable?: string;
}


/** ONNX Runtime is loaded only for spaces that need it; when it cannot be, one line says why and names the space. */
async function latencyTables(where: string): Promise<typeof import('../export/latency-table.js')> {
  await requireOrt(`${where}: regime.latency`);
  return import('../export/latency-table.js');
}

/** The latency model of a space with a latency regime (built or read from the table file); undefined without one. */
export async function latencyModelFor(loaded: LoadedSpace, opts: BuildOptions): Promise<LatencyModel | undefined> {
  if (!loaded.file.regime.latency) return undefined;
  const { buildLatencyModel } = await latencyTables(loaded.path || loaded.file.name);
  return buildLatencyModel(loaded, opts);
}

/** One line stating the held-out error of a fit. */
export function describeFit(fit: NetworkFit): string {
  const pct = (x: number) => `${(100 * x).toFixed(1)}%`;
  return `held-out error on ${fit.holdout.n} configuration(s): median ${pct(fit.holdout.medianRelError)}, max ${pct(fit.holdout.maxRelError)} ` +
    `(table sum alone: median ${pct(fit.holdout.tableOnlyMedianRelError)}); latency ≈ ${fit.scale.toFixed(3)} x table sum, scale fitted on ${fit.fitConfigs}`;
}

/** What a campaign records of the predictor its candidates were sampled against. */
export function latencyRecord(model: LatencyModel): NonNullable<CampaignConfig['latencyModel']> {
  const { n, medianRelError, maxRelError } = model.fit.holdout;
  return { table: model.file, key: { ...model.key }, scale: model.fit.scale, fitConfigs: model.fit.fitConfigs, holdout: { n, medianRelError, maxRelError } };
}
