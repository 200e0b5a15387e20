/**
 * Materialises a distilled student: the channels it silenced are sliced away with the channel map, and the
 * subnetwork is saved as a stock tfjs LayersModel with prunespace.json (parent, method, kept indices) beside it.
 */
import { complexity } from '../../complexity/count.js';
import type { NetSpec, WidthConfig } from '../../nets/types.js';
import type { WeightSet } from '../../training/engine.js';
import { writeLayersWeights } from '../../training/engines/layers-weights.js';
import { sliceWeights } from '../../training/inherit.js';
import { buildModel } from '../../training/model.js';
import { saveTrained, type SavedMetadata } from '../../training/save.js';

export interface Materialised {
  widths: WidthConfig;
  weights: WeightSet;
}

/** The subnetwork keeping `kept` channels of each group; it computes what the full-width student computes. */
export function materialise(spec: NetSpec, parentWidths: WidthConfig, weights: WeightSet, kept: number[][]): Materialised {
  return sliceWeights(spec, parentWidths, weights, kept);
}

/** What prunespace.json records beyond a trained model's fields. */
export interface DistilledMetadata extends SavedMetadata {
  method: 'distill';
  parent: { dir: string; widths: WidthConfig };
  /** Per group, the parent channels kept, in the subnetwork's order. */
  kept: number[][];
}

/** Saves the materialised subnetwork (model.json, weights.bin, prunespace.json) into dir. */
export async function saveMaterialised(
  spec: NetSpec,
  m: Materialised,
  dir: string,
  meta: Omit<DistilledMetadata, 'widths' | 'groups' | 'complexity' | 'net' | 'savedAt'>,
): Promise<DistilledMetadata> {
  const model = buildModel(spec, m.widths, meta.seed);
  const metadata: DistilledMetadata = {
    ...meta,
    net: spec.ref,
    widths: m.widths,
    groups: spec.groups.map((g) => g.name),
    complexity: complexity(spec, m.widths),
    savedAt: new Date().toISOString(),
  };
  try {
    writeLayersWeights(model, spec, m.weights);
    await saveTrained(model, dir, metadata);
  } finally {
    model.dispose();
  }
  return metadata;
}
