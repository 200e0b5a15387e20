/**
 * Batch normalization over all axes but the last (channels), in training mode, as two tight loops each way:
 * forward = one pass for per-channel sums, one pass to normalize; backward = one pass for the two
 * per-channel reductions, one pass for dx. (The tfjs-layers composition takes ~25 kernel launches.)
 * Sums accumulate in float64, so sum-of-squares variance is accurate for float32 activations.
 */

export interface BatchNormStats {
  mean: Float32Array;
  variance: Float32Array;
}

/** y = (x - mean) / sqrt(var + eps) * scale + offset with the batch's own mean and (biased) variance. */
export function batchNormForward(x: Float32Array, channels: number, scale: Float32Array, offset: Float32Array, epsilon: number, y: Float32Array, stats: BatchNormStats): void {
  const count = x.length / channels;
  const sum = new Float64Array(channels);
  const sumSq = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const v = x[i + c];
      sum[c] += v;
      sumSq[c] += v * v;
    }
  }
  const a = new Float32Array(channels);
  const b = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const mean = sum[c] / count;
    const variance = Math.max(0, sumSq[c] / count - mean * mean);
    stats.mean[c] = mean;
    stats.variance[c] = variance;
    a[c] = scale[c] / Math.sqrt(variance + epsilon);
    b[c] = offset[c] - mean * a[c];
  }
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) y[i + c] = x[i + c] * a[c] + b[c];
  }
}

/**
 * Gradients of batchNormForward w.r.t. x, scale and offset, with mean and variance depending on x:
 * dx = scale*rstd * (dy - mean(dy) - xhat * mean(dy * xhat)), dScale = sum(dy * xhat), dOffset = sum(dy).
 */
export function batchNormBackward(dy: Float32Array, x: Float32Array, channels: number, scale: Float32Array, stats: BatchNormStats, epsilon: number, dx: Float32Array, dScale: Float32Array, dOffset: Float32Array): void {
  const count = x.length / channels;
  const sumDy = new Float64Array(channels);
  const sumDyX = new Float64Array(channels);
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) {
      const g = dy[i + c];
      sumDy[c] += g;
      sumDyX[c] += g * x[i + c];
    }
  }
  const kDy = new Float32Array(channels);
  const kX = new Float32Array(channels);
  const k0 = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    const mean = stats.mean[c];
    const rstd = 1 / Math.sqrt(stats.variance[c] + epsilon);
    const dyXhat = rstd * (sumDyX[c] - mean * sumDy[c]);
    dOffset[c] = sumDy[c];
    dScale[c] = dyXhat;
    kDy[c] = scale[c] * rstd;
    kX[c] = (-scale[c] * rstd * rstd * dyXhat) / count;
    k0[c] = (-scale[c] * rstd * sumDy[c]) / count - kX[c] * mean;
  }
  for (let i = 0; i < x.length; i += channels) {
    for (let c = 0; c < channels; c++) dx[i + c] = dy[i + c] * kDy[c] + x[i + c] * kX[c] + k0[c];
  }
}
