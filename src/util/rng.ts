/** Seeded randomness: every random choice in prunespace flows from seedrandom. */
import seedrandom from 'seedrandom';

export type Rng = () => number;

/** A deterministic generator in [0, 1) for a seed and an optional stream label. */
export function makeRng(seed: number | string, stream = ''): Rng {
  return seedrandom(`${seed}/${stream}`);
}

/** A 31-bit child seed derived from a parent seed and a label (e.g. a trial index), independent of timing or order. */
export function deriveSeed(seed: number | string, label: string | number): number {
  return Math.floor(seedrandom(`${seed}:${label}`)() * 0x7fffffff);
}

/** A standard normal draw (Box-Muller) from a seeded stream. */
export function normalDraw(rng: Rng): number {
  return Math.sqrt(-2 * Math.log(1 - rng())) * Math.cos(2 * Math.PI * rng());
}
