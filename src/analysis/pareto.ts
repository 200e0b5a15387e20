/** The Pareto front of error against FLOPs: trials no other trial beats on both. */
import type { Observation } from './population.js';

/** Non-dominated trials in order of increasing FLOPs (and therefore decreasing error). */
export function paretoFront(obs: readonly Observation[]): Observation[] {
  const sorted = [...obs].sort((a, b) => a.flops - b.flops || a.error - b.error || a.index - b.index);
  const front: Observation[] = [];
  for (const o of sorted) if (!front.length || o.error < front[front.length - 1].error) front.push(o);
  return front;
}
