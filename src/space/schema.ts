/** The pruning-space file format, validated with zod so every error names its field path. */
import { z } from 'zod';

const range = z
  .object({ min: z.number(), max: z.number() })
  .strict()
  .refine((r) => r.min <= r.max, { message: 'min must not exceed max' });

const shape = z.union([
  z.string().regex(/^\d+x\d+x\d+$/, 'expected HxWxC such as "32x32x3"'),
  z.tuple([z.number().int().positive(), z.number().int().positive(), z.number().int().positive()]),
]);

export const groupKinds = ['stage', 'inner', 'expand', 'pointwise', 'stem', 'head'] as const;

/** Which channel groups a sampler or constraint applies to; every given field must match, none given matches all. */
export const selectionSchema = z
  .object({
    names: z.array(z.string()).nonempty().optional(),
    kinds: z.array(z.enum(groupKinds)).nonempty().optional(),
    stages: z.array(z.number().int().nonnegative()).nonempty().optional(),
  })
  .strict();

export const samplerSchema = z
  .object({
    select: selectionSchema.default({}),
    /** Kept fraction of the group's original width, 0 < keep <= 1. */
    keep: range.refine((r) => r.min > 0 && r.max <= 1, { message: 'keep must lie in (0, 1]' }).optional(),
    /** Absolute kept-channel counts. */
    width: range.refine((r) => r.min >= 1 && Number.isInteger(r.min) && Number.isInteger(r.max), {
      message: 'width bounds must be integers >= 1',
    }).optional(),
    distribution: z.enum(['uniform', 'log-uniform']).default('uniform'),
    /** Widths are multiples of this many channels (the group's full width is always allowed). */
    quantum: z.number().int().positive().default(1),
  })
  .strict()
  .refine((s) => (s.keep === undefined) !== (s.width === undefined), { message: 'give exactly one of keep or width' });

const window = z
  .object({
    min: z.number().nonnegative().optional(),
    max: z.number().positive().optional(),
    /** 'fraction' of the original network's value, or an 'absolute' count. */
    unit: z.enum(['fraction', 'absolute']).default('fraction'),
  })
  .strict()
  .refine((w) => w.min !== undefined || w.max !== undefined, { message: 'give min, max or both' })
  .refine((w) => w.min === undefined || w.max === undefined || w.min <= w.max, { message: 'min must not exceed max' });

/** Latency targets a regime may name: ONNX Runtime's CPU execution provider, one intra-op thread. */
export const latencyTargets = ['onnxruntime-cpu'] as const;

/** Batch-1 latency in milliseconds on a target, predicted for sampling and measured for every trial. */
export const latencyRegimeSchema = z
  .object({
    ms: z
      .object({ min: z.number().nonnegative().optional(), max: z.number().positive().optional() })
      .strict()
      .refine((w) => w.min !== undefined || w.max !== undefined, { message: 'give min, max or both' })
      .refine((w) => w.min === undefined || w.max === undefined || w.min <= w.max, { message: 'min must not exceed max' }),
    target: z.enum(latencyTargets),
    batch: z.literal(1).default(1),
  })
  .strict();

export const regimeSchema = z
  .object({
    /** Required unless a latency window is given. */
    flops: window.optional(),
    params: window.optional(),
    /** FLOPs per parameter, absolute (e.g. 120 means 120 MACs per parameter). */
    flopsPerParam: z
      .object({ min: z.number().positive().optional(), max: z.number().positive().optional() })
      .strict()
      .refine((w) => w.min !== undefined || w.max !== undefined, { message: 'give min, max or both' })
      .optional(),
    latency: latencyRegimeSchema.optional(),
  })
  .strict()
  .refine((r) => r.flops !== undefined || r.latency !== undefined, { message: 'give a flops window, a latency window, or both', path: ['flops'] });

export const constraintSchema = z
  .object({
    rule: z.literal('non-decreasing'),
    /** Groups in id order; each must keep at least as much as the one before. */
    select: selectionSchema,
    of: z.enum(['width', 'keep']).default('width'),
  })
  .strict();

export const spaceSchema = z
  .object({
    name: z.string().min(1),
    description: z.string().default(''),
    network: z
      .object({
        family: z.string(),
        input: shape.optional(),
        classes: z.number().int().min(2).optional(),
        shortcut: z.enum(['zeropad', 'projection']).optional(),
      })
      .strict(),
    samplers: z.array(samplerSchema).nonempty(),
    regime: regimeSchema,
    constraints: z.array(constraintSchema).default([]),
    parent: z.string().optional(),
    provenance: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

export type SpaceFile = z.infer<typeof spaceSchema>;
export type SpaceFileInput = z.input<typeof spaceSchema>;
export type Selection = z.infer<typeof selectionSchema>;
export type SamplerSpec = z.infer<typeof samplerSchema>;
export type Regime = z.infer<typeof regimeSchema>;
export type LatencyRegime = z.infer<typeof latencyRegimeSchema>;
export type Constraint = z.infer<typeof constraintSchema>;
