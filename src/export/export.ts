/** Exports a saved prunespace model to an ONNX file and records the export in its prunespace.json. */
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadData } from '../training/data/load.js';
import { readLayersWeights } from '../training/engines/layers-weights.js';
import { readSaved } from '../training/infer-bench.js';
import { loadTrained, METADATA_JSON } from '../training/save.js';
import type { TrainSettings } from '../training/types.js';
import { UserError } from '../util/errors.js';
import { buildOnnx, checkOnnx, checkOpset, encodeOnnx, type OnnxOptions } from './onnx.js';

export interface ExportRequest {
  dir: string;
  file: string;
  opset: number;
  batch: 'dynamic' | number;
  layout: 'nhwc' | 'nchw';
}

/** What prunespace.json records about one export, under `exports`. */
export interface ExportRecord {
  format: 'onnx';
  file: string;
  opset: number;
  irVersion: number;
  batch: 'dynamic' | number;
  /** Layout of the input 'pixels' (raw pixels scaled to [0, 1]); the output 'logits' is [batch, classes]. */
  layout: 'nhwc' | 'nchw';
  normalisation: { mean: number[]; std: number[] };
  bytes: number;
  exportedAt: string;
  versions: Record<string, string>;
}

/** Parses --batch: 'dynamic' or a positive integer. */
export function parseBatch(text: string): 'dynamic' | number {
  if (text === 'dynamic') return 'dynamic';
  if (/^\d+$/.test(text) && Number(text) >= 1) return Number(text);
  throw new UserError(`--batch expects 'dynamic' or a positive integer, got '${text}'`);
}

function packageVersion(relative: string): string {
  try {
    const path = fileURLToPath(new URL(`../../${relative}`, import.meta.url));
    return (JSON.parse(readFileSync(path, 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

/**
 * The normalisation the model was trained with: training statistics of the data its settings name (the same
 * loadData the trial ran, so the same split and the same mean and standard deviation).
 */
export function savedNormalisation(dir: string, settings: unknown, hints: { shape: [number, number, number]; classes: number }): { mean: number[]; std: number[] } {
  const data = (settings as Partial<TrainSettings> | undefined)?.data;
  if (!data?.name) throw new UserError(`${join(dir, METADATA_JSON)}: no data settings, so the input normalisation to fold in is unknown`);
  const prepared = loadData(data, hints);
  return { mean: Array.from(prepared.mean), std: Array.from(prepared.std) };
}

/** Writes the ONNX file and appends the record to prunespace.json; nothing is written when any input is bad. */
export async function exportOnnx(req: ExportRequest): Promise<ExportRecord> {
  checkOpset(req.opset);
  const { metadata, spec } = readSaved(req.dir);
  const normalisation = savedNormalisation(req.dir, metadata.settings, { shape: spec.ref.input, classes: spec.ref.classes });
  const { model } = await loadTrained(req.dir);
  const weights = readLayersWeights(model, spec);
  model.dispose();
  const versions = { prunespace: packageVersion('package.json'), 'onnx-proto': packageVersion('node_modules/onnx-proto/package.json'), node: process.versions.node };
  const options: OnnxOptions = { opset: req.opset, batch: req.batch, layout: req.layout, ...normalisation, producerVersion: versions.prunespace };
  const proto = buildOnnx(spec, metadata.widths, weights, options);
  const bytes = encodeOnnx(proto);
  const problems = checkOnnx(bytes);
  if (problems.length) throw new Error(`exported graph is malformed: ${problems.slice(0, 3).join('; ')}`);
  const file = resolve(req.file);
  try {
    writeFileSync(file, bytes);
  } catch (e) {
    throw new UserError(`${req.file}: cannot write (${(e as Error).message.split('\n')[0]})`);
  }
  const record: ExportRecord = {
    format: 'onnx',
    file,
    opset: req.opset,
    irVersion: Number(proto.irVersion),
    batch: req.batch,
    layout: req.layout,
    normalisation,
    bytes: bytes.byteLength,
    exportedAt: new Date().toISOString(),
    versions,
  };
  // prunespace.json is replaced in one rename, so a crash never leaves it half written.
  const metaPath = join(req.dir, METADATA_JSON);
  const current = JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>;
  const exportsSoFar = Array.isArray(current.exports) ? (current.exports as ExportRecord[]) : [];
  const tmp = join(dirname(metaPath), `.${METADATA_JSON}.tmp`);
  writeFileSync(tmp, JSON.stringify({ ...current, exports: [...exportsSoFar, record] }, null, 2) + '\n');
  renameSync(tmp, metaPath);
  return record;
}
