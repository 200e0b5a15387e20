/** Loads a dataset by name, caching the decoded files per process so that consecutive trials skip the disk. */
import type { Shape } from '../../nets/types.js';
import { UserError } from '../../util/errors.js';
import type { DataSettings, DatasetName } from '../types.js';
import { loadCifar } from './cifar.js';
import { FASHION_MNIST_DIR, loadFashionMnist } from './idx.js';
import { prepareData, splitSizes } from './prepare.js';
import { makeSynthetic } from './synthetic.js';
import type { ImageSet, PreparedData, RawDataset } from './types.js';

export const DATASETS = ['fashion-mnist', 'cifar10', 'cifar100', 'synthetic'] as const;

/** Image shape and classes of the datasets read from disk; synthetic data takes both from the network. */
export const DATA_SHAPES: Record<Exclude<DatasetName, 'synthetic'>, DataHints> = {
  'fashion-mnist': { shape: [28, 28, 1], classes: 10 },
  cifar10: { shape: [32, 32, 3], classes: 10 },
  cifar100: { shape: [32, 32, 3], classes: 100 },
};

/** Training images of each dataset's official training split (synthetic: its `samples`, default 1024). */
const TRAIN_COUNTS: Record<Exclude<DatasetName, 'synthetic'>, number> = { 'fashion-mnist': 60000, cifar10: 50000, cifar100: 50000 };

/** Images a run trains on with these settings, known without reading the data (budgets are checked before any trial). */
export function trainImageCount(settings: DataSettings): number {
  const count = settings.name === 'synthetic' ? (settings.samples ?? 1024) : TRAIN_COUNTS[settings.name];
  return splitSizes(count, settings.valFraction, settings.subset).train;
}

/** For synthetic data, which takes its shape and classes from the network. */
export interface DataHints {
  shape: Shape;
  classes: number;
}

const RAW_CACHE = Symbol.for('prunespace.rawDatasets');
// One cache per thread, on the thread's global: under tsx a worker thread loads this module twice (its entry through
// the CommonJS hook, the trial module through the ESM hooks), and a shared dataset adopted by one copy must be seen
// by the other. Compiled dist/ loads it once.
const rawCache: Map<string, RawDataset> = ((globalThis as { [RAW_CACHE]?: Map<string, RawDataset> })[RAW_CACHE] ??= new Map());
const preparedCache = new Map<string, PreparedData>();

function loadRaw(settings: DataSettings, hints: DataHints): RawDataset {
  switch (settings.name) {
    case 'fashion-mnist':
      return loadFashionMnist(settings.dir ?? FASHION_MNIST_DIR);
    case 'cifar10':
    case 'cifar100':
      return loadCifar(settings.name, settings.dir);
    case 'synthetic':
      return makeSynthetic({ shape: hints.shape, classes: hints.classes, samples: settings.samples });
    default:
      throw new UserError(`unknown dataset '${String(settings.name)}' (known: ${DATASETS.join(', ')})`);
  }
}

/** Which decoded files these settings read: settings with the same key share one decoded dataset. */
export function rawKey(settings: DataSettings, hints: DataHints): string {
  return settings.name === 'synthetic'
    ? `synthetic:${hints.shape.join('x')}:${hints.classes}:${settings.samples ?? ''}`
    : `${settings.name}:${settings.dir ?? ''}`;
}

/**
 * A decoded dataset that several worker threads read without copying: the pixels and labels live in
 * SharedArrayBuffers, which a postMessage hands over as the same memory. The key says which settings it answers.
 */
export interface SharedRawDataset {
  key: string;
  raw: RawDataset;
}

function sharedCopy(set: ImageSet): ImageSet {
  if (set.images.buffer instanceof SharedArrayBuffer && set.labels.buffer instanceof SharedArrayBuffer) return set;
  const images = new Uint8Array(new SharedArrayBuffer(set.images.length));
  images.set(set.images);
  const labels = new Uint8Array(new SharedArrayBuffer(set.labels.length));
  labels.set(set.labels);
  return { images, labels, count: set.count };
}

/**
 * The dataset of these settings decoded once into shared memory (the coordinator of a thread pool, so its threads
 * hold no copy of their own). Throws as loadData would for data that does not load.
 */
export function loadSharedRaw(settings: DataSettings, hints: DataHints): SharedRawDataset {
  const key = rawKey(settings, hints);
  const raw = rawCache.get(key) ?? loadRaw(settings, hints);
  const shared = { ...raw, train: sharedCopy(raw.train), test: sharedCopy(raw.test) };
  // This thread's own later loads read the shared copy too: one decoded dataset in the process, not two.
  rawCache.set(key, shared);
  return { key, raw: shared };
}

/** Makes a shared dataset the decoded files of its settings in this thread, unless they are already here. */
export function adoptSharedRaw(shared: SharedRawDataset): void {
  if (!rawCache.has(shared.key)) rawCache.set(shared.key, shared.raw);
}

/** The prepared splits for these settings; decoded files and prepared splits are cached per process. */
export function loadData(settings: DataSettings, hints: DataHints): PreparedData {
  const key = rawKey(settings, hints);
  const pkey = `${key}:${settings.valFraction ?? ''}:${settings.subset ?? ''}:${settings.testSubset ?? ''}`;
  const hit = preparedCache.get(pkey);
  if (hit) return hit;
  let raw = rawCache.get(key);
  if (!raw) {
    raw = loadRaw(settings, hints);
    rawCache.set(key, raw);
  }
  const prepared = prepareData(raw, { valFraction: settings.valFraction, subset: settings.subset, testSubset: settings.testSubset });
  preparedCache.set(pkey, prepared);
  return prepared;
}

/** Frees the cache (tests, or a worker switching datasets). */
export function clearDataCache(): void {
  rawCache.clear();
  preparedCache.clear();
}
