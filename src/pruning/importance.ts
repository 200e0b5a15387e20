/**
 * Importance measures: a registry of scorers over channel groups. Every score is "higher keeps": a group keeps its
 * highest-scoring channels. Sign conventions follow the public code of Lubana & Dick (EkdeepSLubana/flowandprune,
 * imp_estimator.py), which prunes the lowest scores; the flowandprune name of each measure is in its description.
 */
import type { ChannelMap, GroupChannels } from '../nets/channels.js';
import type { EngineBatch, EngineNet, WeightSet, WeightTensor } from '../training/engine.js';
import { UserError } from '../util/errors.js';
import { makeRng } from '../util/rng.js';
import { batchGradients, hessianGradient, meanGradient, type GradientOptions, type HessianMethod } from './gradients.js';

/** What a scorer reads: the weights, the net's widths, and the gradient or H·g its criterion needs (computed once for all groups). */
export interface ScoreContext {
  weights: WeightSet;
  widths: number[];
  g?: WeightSet;
  /** Each batch's own gradient and its share of the samples, for measures that square before averaging. */
  batchGrads?: { grads: WeightSet; share: number }[];
  hg?: WeightSet;
  seed: number;
}

export interface Criterion {
  name: string;
  description: string;
  /** What it needs besides the weights: batches with labels for the mean gradient, per-batch gradients, or H·g. */
  needs: 'weights' | 'gradient' | 'batch-gradients' | 'hessian-gradient';
  /**
   * Logit temperature T of its loss (cross-entropy of logits / T) unless the user gives one: flowandprune's main.py
   * scores GraSP at grasp_T = 200 and sets it to 1 for grad_preserve; every gradient measure there uses T = 1.
   */
  temperature: number;
  /** Raw scores of the group's channels, one array per scored member (conv, depthwise conv or BN). */
  score(ctx: ScoreContext, group: GroupChannels): Float64Array[];
}

/** Per output channel: the reduction over the channel's filter (conv kernel axis 3, depthwise kernel axis 2). */
function perChannel(t: WeightTensor, axis: number, f: (acc: number, v: number, i: number) => number): Float64Array {
  const inner = t.shape.slice(axis + 1).reduce((a, b) => a * b, 1);
  const len = t.shape[axis];
  const out = new Float64Array(len);
  for (let i = 0; i < t.data.length; i++) {
    const c = Math.floor(i / inner) % len;
    out[c] = f(out[c], t.data[i], i);
  }
  return out;
}

/** The weight tensors whose output-channel slices are the group's filters: conv kernels and depthwise kernels. */
function filters(group: GroupChannels): { name: string; axis: number }[] {
  return [...group.convs.map((c) => ({ name: c.kernel, axis: 3 })), ...group.depthwise.map((d) => ({ name: d.kernel, axis: 2 }))];
}

function need(w: WeightSet, name: string): WeightTensor {
  const t = w.get(name);
  if (!t) throw new Error(`weights lack ${name}`);
  return t;
}

/** A filter score built from θ and a second tensor of the same shape (the gradient or H·g). */
function filterProduct(
  ctx: ScoreContext,
  group: GroupChannels,
  other: WeightSet,
  reduce: (acc: number, product: number) => number,
  finish: (s: number) => number = (s) => s,
): Float64Array[] {
  return filters(group).map(({ name, axis }) => {
    const theta = need(ctx.weights, name);
    const g = need(other, name);
    return perChannel(theta, axis, (acc, v, i) => reduce(acc, v * g.data[i])).map(finish);
  });
}

export const CRITERIA: Record<string, Criterion> = {
  l1: {
    name: 'l1',
    description: 'L1 norm of each output filter (flowandprune l1; Li et al. 2017)',
    needs: 'weights',
    temperature: 1,
    score: (ctx, group) => filters(group).map(({ name, axis }) => perChannel(need(ctx.weights, name), axis, (a, v) => a + Math.abs(v))),
  },
  l2: {
    name: 'l2',
    description: 'L2 norm of each output filter (flowandprune mag_based, the paper\'s magnitude measure)',
    needs: 'weights',
    temperature: 1,
    score: (ctx, group) => filters(group).map(({ name, axis }) => perChannel(need(ctx.weights, name), axis, (a, v) => a + v * v).map(Math.sqrt)),
  },
  snip: {
    name: 'snip',
    description: 'loss preservation Σ|θ·g| over each filter (flowandprune loss_based, the paper\'s loss-preservation measure; SNIP on filters)',
    needs: 'gradient',
    temperature: 1,
    score: (ctx, group) => filterProduct(ctx, group, ctx.g!, (a, p) => a + Math.abs(p)),
  },
  'biased-loss': {
    name: 'biased-loss',
    description: 'loss preservation biased towards removing small weights Σ|θ²·g| over each filter (flowandprune biased_loss, the paper\'s first claim)',
    needs: 'gradient',
    temperature: 1,
    score: (ctx, group) =>
      filters(group).map(({ name, axis }) => {
        const theta = need(ctx.weights, name);
        const g = need(ctx.g!, name);
        return perChannel(theta, axis, (acc, v, i) => acc + Math.abs(v * v * g.data[i]));
      }),
  },
  taylor: {
    name: 'taylor',
    description: 'first-order Taylor |Σθ·g| over each filter (flowandprune tfo; Molchanov et al. 2017)',
    needs: 'gradient',
    temperature: 1,
    score: (ctx, group) => filterProduct(ctx, group, ctx.g!, (a, p) => a + p, Math.abs),
  },
  grasp: {
    name: 'grasp',
    description:
      'signed Σθ·(Hg) over each filter at T = 200 (flowandprune grasp): the lowest, most negative, scores are pruned, ' +
      'which raises the gradient norm (removing θ changes ‖g‖² by about −2θ·Hg)',
    needs: 'hessian-gradient',
    temperature: 200,
    score: (ctx, group) => filterProduct(ctx, group, ctx.hg!, (a, p) => a + p),
  },
  gradnorm: {
    name: 'gradnorm',
    description: 'gradient-norm preservation |Σθ·(Hg)| over each filter at T = 1 (flowandprune grad_preserve)',
    needs: 'hessian-gradient',
    temperature: 1,
    score: (ctx, group) => filterProduct(ctx, group, ctx.hg!, (a, p) => a + p, Math.abs),
  },
  'bn-scale': {
    name: 'bn-scale',
    description: 'BN scale |γ| of each channel (flowandprune bn; network slimming)',
    needs: 'weights',
    temperature: 1,
    score: (ctx, group) => group.bns.map((b) => Float64Array.from(need(ctx.weights, b.gamma).data, Math.abs)),
  },
  'bn-taylor': {
    name: 'bn-taylor',
    description:
      'Taylor on BN (γ·∂L/∂γ + β·∂L/∂β)² of each channel, squared per batch and then averaged over the batches ' +
      '(Molchanov et al. 2019; flowandprune nvidia squares per parameter instead)',
    needs: 'batch-gradients',
    temperature: 1,
    score: (ctx, group) =>
      group.bns.map((b) => {
        const gamma = need(ctx.weights, b.gamma).data;
        const beta = need(ctx.weights, b.beta).data;
        const out = new Float64Array(gamma.length);
        for (const { grads, share } of ctx.batchGrads!) {
          const dg = need(grads, b.gamma).data;
          const db = need(grads, b.beta).data;
          for (let c = 0; c < out.length; c++) out[c] += share * (gamma[c] * dg[c] + beta[c] * db[c]) ** 2;
        }
        return out;
      }),
  },
  random: {
    name: 'random',
    description: 'uniform random scores, seeded: the baseline',
    needs: 'weights',
    temperature: 1,
    score: (ctx, group) => {
      const rng = makeRng(ctx.seed, `random/${group.group.name}`);
      return [Float64Array.from({ length: ctx.widths[group.group.id] }, () => rng())];
    },
  },
};

export function criterionNames(): string[] {
  return Object.keys(CRITERIA);
}

/** The one check of a criterion name given by a user: one line naming the flag and the known criteria. */
export function checkCriterion(name: string): void {
  if (!Object.hasOwn(CRITERIA, name)) throw new UserError(`--criterion: unknown criterion '${name}' (known: ${criterionNames().join(', ')})`);
}

/** The logit temperature a criterion scores at: the user's, checked to be positive, else the criterion's own. */
export function scoringTemperature(criterion: string, given?: number): number {
  checkCriterion(criterion);
  if (given === undefined) return CRITERIA[criterion].temperature;
  if (!(Number.isFinite(given) && given > 0)) throw new UserError(`--temperature must be a number > 0, got ${given}`);
  return given;
}

/** How the scores of a group's members (its convs, depthwise convs or BNs) become one score per channel. */
export type Combine = 'sum' | 'mean' | 'max';
export const COMBINES: readonly Combine[] = ['sum', 'mean', 'max'];

/**
 * Each member's scores are first divided by the member's mean absolute score, so a layer with large weights does
 * not outvote the others, then combined channel by channel: sum, mean (the sum over the member count; it ranks as
 * the sum but stays comparable across groups), or max (a channel is as important as its most important use).
 * Signs survive normalisation, so a signed measure (grasp) stays signed.
 */
export function combineScores(members: Float64Array[], how: Combine): Float64Array {
  if (members.length === 0) throw new Error('a group with nothing to score');
  const n = members[0].length;
  const out = new Float64Array(n).fill(how === 'max' ? -Infinity : 0);
  for (const m of members) {
    if (m.length !== n) throw new Error('members of one group disagree on its width');
    const scale = m.reduce((s, v) => s + Math.abs(v), 0) / n;
    for (let c = 0; c < n; c++) {
      const v = scale > 0 ? m[c] / scale : m[c];
      out[c] = how === 'max' ? Math.max(out[c], v) : out[c] + v;
    }
  }
  if (how === 'mean') for (let c = 0; c < n; c++) out[c] /= members.length;
  return out;
}

export interface ScoreOptions extends GradientOptions {
  combine?: Combine;
  /** Seed of the random criterion. */
  seed?: number;
  /** Finite-difference step of H·g where the engine cannot differentiate twice. */
  relStep?: number;
}

export interface GroupScores {
  /** One combined score per channel per group, in group order. */
  scores: Float64Array[];
  /** Raw scores per member, for inspection. */
  members: Float64Array[][];
  /** How H·g was computed, when the criterion needed it. */
  hessian?: HessianMethod;
}

/** Scores every group of the net by a named criterion. Batches are needed (with labels) unless it reads weights only. */
export async function scoreGroups(
  net: EngineNet,
  map: ChannelMap,
  criterion: string,
  batches: EngineBatch[],
  opts: ScoreOptions = {},
): Promise<GroupScores> {
  const c = CRITERIA[criterion];
  if (!c) throw new UserError(`unknown criterion '${criterion}' (known: ${criterionNames().join(', ')})`);
  const gopts = { ...opts, temperature: scoringTemperature(criterion, opts.temperature) };
  const ctx: ScoreContext = { weights: await net.readWeights(), widths: net.widths, seed: opts.seed ?? 0 };
  let hessian: HessianMethod | undefined;
  if (c.needs === 'gradient') ctx.g = await meanGradient(net, batches, gopts);
  if (c.needs === 'batch-gradients') ctx.batchGrads = await batchGradients(net, batches, gopts);
  if (c.needs === 'hessian-gradient') {
    const r = await hessianGradient(net, batches, gopts);
    ctx.hg = r.hg;
    hessian = r.method;
  }
  const members = map.groups.map((g) => c.score(ctx, g));
  return { scores: members.map((m) => combineScores(m, opts.combine ?? 'sum')), members, ...(hessian ? { hessian } : {}) };
}
