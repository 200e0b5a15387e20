/** In-memory datasets: raw uint8 pixels in NHWC order and labels, kept as typed arrays, never as tensors. */
import type { Shape } from '../../nets/types.js';

/** A set of images: `count` images of `shape`, pixels in 0..255 in NHWC order. */
export interface ImageSet {
  images: Uint8Array;
  labels: Uint8Array;
  count: number;
}

/** Label-preserving augmentation of one dataset. */
export interface AugmentPolicy {
  /** Zero-pad by this many pixels each side, then crop back at a random offset (0: none). */
  padCrop: number;
  /** Mirror left-right with probability 1/2. */
  flip: boolean;
}

/** A dataset as loaded from disk (or generated): its official train and test splits. */
export interface RawDataset {
  name: string;
  shape: Shape;
  classes: number;
  train: ImageSet;
  test: ImageSet;
  augment: AugmentPolicy;
}

/** A subset of a RawDataset's images, by index; batches copy pixels from the source. */
export interface Split {
  source: ImageSet;
  indices: Int32Array;
}

/** What training consumes: train / validation / test splits and the normalisation from training statistics. */
export interface PreparedData {
  name: string;
  shape: Shape;
  classes: number;
  train: Split;
  val: Split;
  test: Split;
  /** Per-channel mean and standard deviation of training pixels, in 0..255 units. */
  mean: Float32Array;
  std: Float32Array;
  augment: AugmentPolicy;
}
