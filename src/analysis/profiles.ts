/** Width profiles: how much of each group and stage the winners keep, against the whole population. */
import * as ss from 'simple-statistics';
import type { ChannelGroup } from '../nets/types.js';
import type { Observation } from './population.js';

export interface GroupProfile {
  group: number;
  name: string;
  kind: ChannelGroup['kind'];
  stage: number;
  base: number;
  /** Mean keep ratio (width / base) of the best k trials and of all trials. */
  winners: number;
  all: number;
  /** Spread of keep ratios among the winners and all trials. */
  winnersRange: [number, number];
  allRange: [number, number];
}

export interface StageProfile {
  stage: number;
  /** Mean keep ratio over the stage's channels (channels kept / channels of the original). */
  winners: number;
  all: number;
}

export interface WidthProfile {
  k: number;
  n: number;
  groups: GroupProfile[];
  stages: StageProfile[];
  /**
   * Least-squares slope of (winners' keep - all keep) against stage index: positive where winners
   * keep relatively more of later stages.
   */
  stageTrend: number | null;
  /** Share of trials whose 'stage'-kind group widths never decrease from stage to stage, winners and all. */
  monotone: { winners: number; all: number } | null;
  trendText: string;
}

/** The groups that carry a network's stage widths, in stage order (one per stage where the net has one). */
export function stageGroups(groups: readonly ChannelGroup[]): ChannelGroup[] {
  return groups.filter((g) => g.kind === 'stage').sort((a, b) => a.stage - b.stage || a.id - b.id);
}

/** Stage widths never decrease along the network (a common design rule of hand-made CNNs). */
export function isMonotone(widths: readonly number[], chain: readonly ChannelGroup[]): boolean {
  for (let i = 1; i < chain.length; i++) if (widths[chain[i].id] < widths[chain[i - 1].id]) return false;
  return true;
}

function stageKeep(obs: readonly Observation[], ids: readonly number[], bases: number): number {
  return ss.mean(obs.map((o) => ids.reduce((s, i) => s + o.widths[i], 0) / bases));
}

export function widthProfile(obs: readonly Observation[], winners: readonly Observation[], groups: readonly ChannelGroup[]): WidthProfile {
  const keeps = (set: readonly Observation[], g: ChannelGroup) => set.map((o) => o.widths[g.id] / g.base);
  const profiles: GroupProfile[] = obs.length && winners.length
    ? groups.map((g) => {
        const w = keeps(winners, g);
        const a = keeps(obs, g);
        return {
          group: g.id, name: g.name, kind: g.kind, stage: g.stage, base: g.base,
          winners: ss.mean(w), all: ss.mean(a),
          winnersRange: [ss.min(w), ss.max(w)], allRange: [ss.min(a), ss.max(a)],
        };
      })
    : [];
  const stageIds = [...new Set(groups.map((g) => g.stage))].sort((a, b) => a - b);
  const stages: StageProfile[] = profiles.length
    ? stageIds.map((stage) => {
        const members = groups.filter((g) => g.stage === stage);
        const ids = members.map((g) => g.id);
        const bases = ss.sum(members.map((g) => g.base));
        return { stage, winners: stageKeep(winners, ids, bases), all: stageKeep(obs, ids, bases) };
      })
    : [];
  let stageTrend: number | null = null;
  if (stages.length >= 2) {
    stageTrend = ss.linearRegression(stages.map((s) => [s.stage, s.winners - s.all])).m;
  }
  const chain = stageGroups(groups);
  const monotone = chain.length >= 2 && profiles.length
    ? {
        winners: winners.filter((o) => isMonotone(o.widths, chain)).length / winners.length,
        all: obs.filter((o) => isMonotone(o.widths, chain)).length / obs.length,
      }
    : null;
  return { k: winners.length, n: obs.length, groups: profiles, stages, stageTrend, monotone, trendText: describeTrend(stages, stageTrend) };
}

function describeTrend(stages: readonly StageProfile[], slope: number | null): string {
  if (slope === null) return 'too few trials or stages to compare winners with the population';
  const diffs = stages.map((s) => `stage ${s.stage} ${s.winners - s.all >= 0 ? '+' : ''}${(100 * (s.winners - s.all)).toFixed(1)}%`).join(', ');
  // Below one percentage point of keep ratio per stage, call it no trend.
  const direction = Math.abs(slope) < 0.01 ? 'no clear trend across stages' : slope > 0 ? 'winners keep relatively more of later stages' : 'winners keep relatively more of earlier stages';
  return `${direction} (winners minus all, keep ratio: ${diffs})`;
}
