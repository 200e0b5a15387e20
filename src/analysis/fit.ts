/** Weighted least-squares quadratic, the curve fitted to error against log FLOPs/param ratio. */

export interface Quadratic {
  /** y = a + b (x - center) + c (x - center)^2; centring keeps the normal equations well conditioned. */
  a: number;
  b: number;
  c: number;
  center: number;
}

export function evalQuadratic(q: Quadratic, x: number): number {
  const d = x - q.center;
  return q.a + q.b * d + q.c * d * d;
}

/** The stationary point's x, or null where the curve is a line. */
export function vertex(q: Quadratic): number | null {
  return q.c === 0 ? null : q.center - q.b / (2 * q.c);
}

/** Fits y against x with weights w; null where fewer than three distinct x carry weight. */
export function fitQuadratic(xs: readonly number[], ys: readonly number[], ws?: readonly number[]): Quadratic | null {
  const n = xs.length;
  const w = ws ?? xs.map(() => 1);
  let sw = 0;
  let swx = 0;
  for (let i = 0; i < n; i++) {
    sw += w[i];
    swx += w[i] * xs[i];
  }
  if (sw <= 0) return null;
  const center = swx / sw;
  if (new Set(xs.filter((_, i) => w[i] > 0)).size < 3) return null;
  // Normal equations M [a b c]^T = v over powers of d = x - center.
  const s = [0, 0, 0, 0, 0];
  const v = [0, 0, 0];
  for (let i = 0; i < n; i++) {
    const d = xs[i] - center;
    let p = w[i];
    for (let k = 0; k < 5; k++) {
      s[k] += p;
      if (k < 3) v[k] += p * ys[i];
      p *= d;
    }
  }
  const m = [
    [s[0], s[1], s[2], v[0]],
    [s[1], s[2], s[3], v[1]],
    [s[2], s[3], s[4], v[2]],
  ];
  const sol = solve3(m);
  return sol ? { a: sol[0], b: sol[1], c: sol[2], center } : null;
}

/** Gaussian elimination with partial pivoting on a 3x4 augmented matrix. */
function solve3(m: number[][]): [number, number, number] | null {
  for (let col = 0; col < 3; col++) {
    let pivot = col;
    for (let r = col + 1; r < 3; r++) if (Math.abs(m[r][col]) > Math.abs(m[pivot][col])) pivot = r;
    if (Math.abs(m[pivot][col]) < 1e-300) return null;
    [m[col], m[pivot]] = [m[pivot], m[col]];
    for (let r = 0; r < 3; r++) {
      if (r === col) continue;
      const f = m[r][col] / m[col][col];
      for (let k = col; k < 4; k++) m[r][k] -= f * m[col][k];
    }
  }
  const x: [number, number, number] = [m[0][3] / m[0][0], m[1][3] / m[1][1], m[2][3] / m[2][2]];
  return x.every(Number.isFinite) ? x : null;
}
