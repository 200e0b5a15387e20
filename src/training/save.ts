/**
 * Saves a trained subnetwork as a standard tfjs LayersModel (model.json + weights.bin, the layout tfjs-node's file://
 * handler writes and tf.loadLayersModel reads over http in a browser), with prunespace.json beside it.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Complexity } from '../complexity/count.js';
import type { NetRef, WidthConfig } from '../nets/types.js';
import { UserError } from '../util/errors.js';
import { selectBackend } from './backends/select.js';
import type { EngineNet } from './engine.js';
import { writeLayersWeights } from './engines/layers-weights.js';
import { buildModel } from './model.js';

export const MODEL_JSON = 'model.json';
export const WEIGHTS_BIN = 'weights.bin';
export const METADATA_JSON = 'prunespace.json';

/** What prunespace.json records about a saved subnetwork. */
export interface SavedMetadata {
  net: NetRef;
  widths: WidthConfig;
  /** Group names in width order, so the file reads on its own. */
  groups: string[];
  complexity: Complexity;
  metrics: Record<string, number | string | undefined>;
  seed: number;
  settings?: unknown;
  savedAt: string;
  /** Set on a model pruned from a parent: the parent, the criterion and the kept channel indices per group. */
  pruned?: unknown;
}

/** An IOHandler that writes the two files of a tfjs LayersModel into dir. */
function fileSaveHandler(dir: string): tf.io.IOHandler {
  return {
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      mkdirSync(dir, { recursive: true });
      const weights = new Uint8Array(tf.io.CompositeArrayBuffer.join(artifacts.weightData ?? new ArrayBuffer(0)));
      const modelJson: tf.io.ModelJSON = {
        modelTopology: artifacts.modelTopology!,
        format: artifacts.format,
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy,
        weightsManifest: [{ paths: [WEIGHTS_BIN], weights: artifacts.weightSpecs ?? [] }],
      };
      writeFileSync(join(dir, WEIGHTS_BIN), weights);
      writeFileSync(join(dir, MODEL_JSON), JSON.stringify(modelJson));
      return {
        modelArtifactsInfo: {
          dateSaved: new Date(),
          modelTopologyType: 'JSON',
          weightDataBytes: weights.byteLength,
        },
      };
    },
  };
}

/** An IOHandler that reads model.json and its weight files from dir (Node has no file:// loader without tfjs-node). */
export function fileLoadHandler(dir: string): tf.io.IOHandler {
  return {
    async load(): Promise<tf.io.ModelArtifacts> {
      const path = join(dir, MODEL_JSON);
      let json: tf.io.ModelJSON;
      try {
        json = JSON.parse(readFileSync(path, 'utf8')) as tf.io.ModelJSON;
      } catch (e) {
        throw new UserError(`${path}: cannot read a tfjs model (${(e as Error).message})`);
      }
      return tf.io.getModelArtifactsForJSON(json, async (manifest) => {
        const specs = manifest.flatMap((g) => g.weights);
        const buffers = manifest.flatMap((g) =>
          g.paths.map((p) => {
            const b = readFileSync(join(dir, p));
            return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
          }),
        );
        return [specs, tf.io.concatenateArrayBuffers(buffers)];
      });
    },
  };
}

export async function saveTrained(model: tf.LayersModel, dir: string, metadata: SavedMetadata): Promise<void> {
  await model.save(fileSaveHandler(dir));
  writeFileSync(join(dir, METADATA_JSON), JSON.stringify(metadata, null, 2) + '\n');
}

/** Saves a net trained on any engine: its weights go into the tfjs LayersModel of the same NetSpec and widths. */
export async function saveNet(net: EngineNet, dir: string, metadata: SavedMetadata): Promise<void> {
  const weights = await net.readWeights();
  const model = buildModel(net.spec, net.widths, metadata.seed);
  try {
    writeLayersWeights(model, net.spec, weights);
    await saveTrained(model, dir, metadata);
  } finally {
    model.dispose();
  }
}

export async function loadTrained(dir: string): Promise<{ model: tf.LayersModel; metadata: SavedMetadata }> {
  // An engine that is not tfjs (torch) may run with no tfjs backend started; reading a model needs one.
  if (!tf.engine().backendName) await selectBackend('cpu');
  const model = await tf.loadLayersModel(fileLoadHandler(dir));
  const path = join(dir, METADATA_JSON);
  let metadata: SavedMetadata;
  try {
    metadata = JSON.parse(readFileSync(path, 'utf8')) as SavedMetadata;
  } catch (e) {
    throw new UserError(`${path}: cannot read prunespace metadata (${(e as Error).message})`);
  }
  return { model, metadata };
}
