/** Loads a saved prunespace model as a distillation parent: its network, widths and weights in tfjs layout. */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildNet } from '../../nets/registry.js';
import { checkWidths } from '../../nets/resolve.js';
import { selectBackend } from '../../training/backends/select.js';
import { readLayersWeights } from '../../training/engines/layers-weights.js';
import { buildModel } from '../../training/model.js';
import { loadTrained, METADATA_JSON, MODEL_JSON } from '../../training/save.js';
import { UserError, isUserError } from '../../util/errors.js';
import type { Parent } from './distill.js';

export async function loadParent(dir: string): Promise<Parent> {
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UserError(`--parent ${dir}: no such directory`);
  for (const f of [METADATA_JSON, MODEL_JSON]) {
    if (!existsSync(join(dir, f))) throw new UserError(`--parent ${dir}: not a prunespace model (no ${f})`);
  }
  // Model files are read through tfjs, which needs a backend even when the torch engine computes.
  await selectBackend('auto');
  const { model, metadata } = await loadTrained(dir);
  try {
    if (!metadata || typeof metadata !== 'object' || !metadata.net || !Array.isArray(metadata.widths)) {
      throw new UserError(`--parent ${dir}: ${METADATA_JSON} lacks the network or its widths`);
    }
    let spec;
    try {
      spec = buildNet(metadata.net);
      checkWidths(spec, metadata.widths);
    } catch (e) {
      if (isUserError(e)) throw new UserError(`--parent ${dir}: ${METADATA_JSON}: ${e.message}`);
      throw e;
    }
    const weights = readLayersWeights(model, spec);
    // The saved model must be the network its metadata names, weight for weight.
    const expected = buildModel(spec, metadata.widths, 0);
    try {
      for (const [name, t] of readLayersWeights(expected, spec)) {
        const got = weights.get(name);
        if (!got) throw new UserError(`--parent ${dir}: model.json lacks weight ${name}, which ${METADATA_JSON}'s network has`);
        if (got.shape.join('x') !== t.shape.join('x')) {
          throw new UserError(`--parent ${dir}: weight ${name} is ${got.shape.join('x')} but ${METADATA_JSON}'s widths make it ${t.shape.join('x')}`);
        }
      }
    } finally {
      expected.dispose();
    }
    return { spec, widths: metadata.widths, weights };
  } finally {
    model.dispose();
  }
}
