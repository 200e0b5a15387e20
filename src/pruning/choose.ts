/**
 * Chooses which parent channels each group keeps, from one score per channel: the top-scoring ones, except where
 * zero-pad shortcuts chain groups together, which must agree on their shared positions (see checkKept).
 */
import type { ChannelMap } from '../nets/channels.js';
import type { WidthConfig } from '../nets/types.js';
import type { KeptIndices } from '../training/inherit.js';

/** Indices of the `n` highest scores among `candidates`, ties to the lower index, returned in ascending order. */
function top(candidates: number[], score: (c: number) => number, n: number): number[] {
  return [...candidates]
    .sort((a, b) => score(b) - score(a) || a - b)
    .slice(0, n)
    .sort((a, b) => a - b);
}

/** Scores divided by their mean absolute value, so groups with many members do not outvote others in a chain. */
function normalised(s: Float64Array): Float64Array {
  const scale = s.reduce((a, v) => a + Math.abs(v), 0) / Math.max(1, s.length);
  return scale > 0 ? s.map((v) => v / scale) : s;
}

/** Groups joined by zero-pad shortcuts, as paths in shortcut direction; groups without any are left out. */
function zeroPadChains(map: ChannelMap): number[][] {
  const next = new Map<number, number>();
  const prev = new Map<number, number>();
  for (const z of map.zeroPad) {
    if (next.has(z.from) || prev.has(z.to)) throw new Error(`group ${z.from} or ${z.to} joins more than one zero-pad shortcut chain`);
    next.set(z.from, z.to);
    prev.set(z.to, z.from);
  }
  const chains: number[][] = [];
  for (const start of next.keys()) {
    if (prev.has(start)) continue;
    const chain = [start];
    while (next.has(chain[chain.length - 1])) chain.push(next.get(chain[chain.length - 1])!);
    chains.push(chain);
  }
  return chains;
}

/**
 * Kept parent channels per group for `widths`. A group outside zero-pad chains keeps its `widths[g]` best channels.
 * In a chain, the narrowest group's channels are the prefix every group of the chain shares: they are chosen by the
 * chain's mean normalised score among the channels all its groups have; the chain then splits at that group and
 * each side extends the prefix the same way, down to single groups choosing by their own scores. Every pair of
 * neighbours thus shares exactly its first min(width) positions, which the zero-pad shortcut needs.
 */
export function chooseKept(map: ChannelMap, scores: Float64Array[], parentWidths: WidthConfig, widths: WidthConfig): KeptIndices {
  const kept: KeptIndices = widths.map(() => []);
  const norm = scores.map(normalised);
  const inChain = new Set<number>();
  for (const chain of zeroPadChains(map)) {
    chain.forEach((g) => inChain.add(g));
    const fill = (lo: number, hi: number, prefix: number[]): void => {
      if (lo > hi) return;
      const span = chain.slice(lo, hi + 1);
      let m = lo;
      for (let i = lo; i <= hi; i++) if (widths[chain[i]] < widths[chain[m]]) m = i;
      const have = Math.min(...span.map((g) => parentWidths[g]));
      const taken = new Set(prefix);
      const candidates = Array.from({ length: have }, (_, c) => c).filter((c) => !taken.has(c));
      const score = (c: number): number => span.reduce((s, g) => s + norm[g][c], 0) / span.length;
      const shared = [...prefix, ...top(candidates, score, widths[chain[m]] - prefix.length)];
      kept[chain[m]] = shared;
      fill(lo, m - 1, shared);
      fill(m + 1, hi, shared);
    };
    fill(0, chain.length - 1, []);
  }
  widths.forEach((w, g) => {
    if (inChain.has(g)) return;
    kept[g] = top(Array.from({ length: parentWidths[g] }, (_, c) => c), (c) => scores[g][c], w);
  });
  return kept;
}
