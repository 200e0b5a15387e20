/**
 * Geometry of a transposed convolution (the input gradient of a strided conv) rewritten as one stride-1
 * forward convolution per output phase ("sub-pixel" form), so it runs on XNNPACK instead of a scalar loop.
 *
 * Forward conv along one axis: y[o] = sum_k x[o*s + k - pad] * w[k]. Its input gradient at position
 * h = s*i + r (phase r in [0, s)) collects the taps k with k = (r + pad) mod s + s*m, from dy[i + c - m]
 * where c = floor((r + pad) / s). planPhases gives each phase its own conv (exact taps); planAxis gives all
 * phases one shared filter length and leading pad, so the s*s phases can be the output channels of one conv.
 */
export interface AxisPlan {
  /** Filter length of the phase conv (taps that do not exist for a phase are zero). */
  length: number;
  /** Zero padding before/after dy along this axis; negative means dy is cropped. */
  padBefore: number;
  padAfter: number;
  /** Output rows per phase: ceil(inLength / stride). */
  phaseLength: number;
  /** taps[r][j] = original filter index used by phase r at phase-filter position j, or -1 for a zero tap. */
  taps: number[][];
}

/**
 * @param kernel filter size along the axis, @param stride forward stride, @param pad forward leading pad,
 * @param inLength forward input length (the gradient's length), @param outLength forward output length (dy's length)
 */
export function planAxis(kernel: number, stride: number, pad: number, inLength: number, outLength: number): AxisPlan {
  const phases = Array.from({ length: stride }, (_, r) => {
    const q = r + pad;
    const first = ((q % stride) + stride) % stride;
    const c = Math.floor(q / stride);
    const count = first >= kernel ? 0 : Math.ceil((kernel - first) / stride);
    return { first, c, count };
  });
  const live = phases.filter((p) => p.count > 0);
  const minOffset = Math.min(...live.map((p) => p.c - p.count + 1));
  const maxOffset = Math.max(...live.map((p) => p.c));
  const length = maxOffset - minOffset + 1;
  const padBefore = -minOffset;
  const phaseLength = Math.ceil(inLength / stride);
  const padAfter = phaseLength - 1 + length - outLength - padBefore;
  const taps = phases.map((p) =>
    Array.from({ length }, (_, j) => {
      const m = p.c - (j - padBefore);
      return m >= 0 && m < p.count ? p.first + stride * m : -1;
    }),
  );
  return { length, padBefore, padAfter, phaseLength, taps };
}

/** One stride phase's own conv along an axis: the original filter taps it uses (in conv order) and its pads. */
export interface PhasePlan {
  taps: number[];
  padBefore: number;
  padAfter: number;
}

/**
 * Per-phase plans with exactly the taps each phase needs (ceil(K/s) or floor(K/s) of them), so the s*s phase
 * convs together do the forward conv's multiply count; a phase with no taps is all zeros (e.g. 1x1, stride 2).
 */
export function planPhases(kernel: number, stride: number, pad: number, inLength: number, outLength: number): PhasePlan[] {
  const phaseLength = Math.ceil(inLength / stride);
  return Array.from({ length: stride }, (_, r) => {
    const q = r + pad;
    const first = ((q % stride) + stride) % stride;
    const c = Math.floor(q / stride);
    const count = first >= kernel ? 0 : Math.ceil((kernel - first) / stride);
    const taps = Array.from({ length: count }, (_, j) => first + stride * (count - 1 - j));
    const padBefore = count - 1 - c;
    return { taps, padBefore, padAfter: phaseLength - 1 + count - outLength - padBefore };
  });
}
