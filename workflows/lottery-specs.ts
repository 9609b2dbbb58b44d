// The lottery-ticket experiment spec: a trunk (dense training, then `levels` rounds of prune -> rewind ->
// retrain) and the control branches to run from it. Pure zod, shared by the CLI, workflows and activities.
import { z } from 'zod';

import { parseSpec, trainConfigSchema } from './specs';

const rate = z.number().min(0).lt(1);
const layerNames = z.array(z.string().min(1));

/**
 * Which weights each level removes (ml/pruning). Biases are never pruned. `exclude` lists prunable weights to
 * leave dense; omitted, global magnitude excludes the output layer (open_lth) and layerwise excludes nothing.
 */
export const pruningSpecSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('global-magnitude'),
      fraction: rate.default(0.2),
      exclude: layerNames.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('layerwise-magnitude'),
      /** Share of each layer's surviving weights removed per level (Frankle & Carbin: 0.2). */
      fraction: rate.default(0.2),
      /** Share for the output layer (Frankle & Carbin: 0.1). */
      outputFraction: rate.default(0.1),
      /** Per-layer overrides by weight name, e.g. {"fc1.weight": 0.3}. */
      fractions: z.record(z.string(), rate).optional(),
      exclude: layerNames.optional(),
    })
    .strict(),
]);

/** Where survivors go back to after pruning: their initial values, or the dense run's state at step k. */
export const rewindSpecSchema = z.union([
  z.literal('init'),
  z.object({ step: z.number().int().positive() }).strict(),
]);

/**
 * Control branches, each its own workflow reusing the trunk's artifacts:
 * - reinit: the trunk's masks with a fresh random initialisation (seed);
 * - random-prune: random masks with the trunk's sparsity at each level, rewound like the trunk: the same count in
 *   every layer (scope 'layerwise', the default) or the same total over the pruned layers ('global');
 * - one-shot: prune the dense solution once to each level's sparsity, rewound like the trunk;
 * - rewind: IMP again with another rewind point (shares the trunk's dense training).
 */
export const branchSpecSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('reinit'), seed: z.number().int().min(0).default(1) }).strict(),
  z
    .object({
      kind: z.literal('random-prune'),
      seed: z.number().int().min(0).default(1),
      // Optional rather than defaulted: an absent scope keeps the lineage hashes of earlier specs.
      // Absent means layerwise; branchLineageId treats both spellings as one lineage.
      scope: z.enum(['layerwise', 'global']).optional(),
    })
    .strict(),
  z.object({ kind: z.literal('one-shot') }).strict(),
  z.object({ kind: z.literal('rewind'), to: rewindSpecSchema }).strict(),
]);

export const lotterySpecSchema = z
  .object({
    experiment: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/, 'letters, digits, dot, dash, underscore; at most 64')
      .default('default'),
    train: trainConfigSchema,
    /** Pruning levels after the dense level 0: levels 0..levels are trained. */
    levels: z.number().int().min(0).max(100).default(8),
    pruning: pruningSpecSchema.default({ kind: 'global-magnitude', fraction: 0.2 }),
    rewind: rewindSpecSchema.default('init'),
    branches: z.array(branchSpecSchema).default([]),
    checkpointEvery: z.number().int().positive().default(500),
    heartbeatTimeoutSeconds: z.number().int().positive().default(60),
  })
  .strict()
  .superRefine((s, ctx) => {
    const iterations = s.train.iterations;
    const check = (to: RewindSpec, path: (string | number)[]) => {
      if (to !== 'init' && iterations !== undefined && to.step >= iterations) {
        ctx.addIssue({
          code: 'custom',
          path,
          message: `rewind step ${to.step} must be before the end of training (${iterations} iterations)`,
        });
      }
    };
    check(s.rewind, ['rewind', 'step']);
    s.branches.forEach((b, i) => {
      if (b.kind === 'rewind') check(b.to, ['branches', i, 'to', 'step']);
    });
    const seen = new Set<string>();
    s.branches.forEach((b, i) => {
      const id = branchLabel(b);
      if (seen.has(id))
        ctx.addIssue({ code: 'custom', path: ['branches', i], message: `duplicate branch ${id}` });
      seen.add(id);
    });
  });

export type PruningSpec = z.infer<typeof pruningSpecSchema>;
export type RewindSpec = z.infer<typeof rewindSpecSchema>;
export type BranchSpec = z.infer<typeof branchSpecSchema>;
export type LotterySpec = z.infer<typeof lotterySpecSchema>;
export type LotterySpecInput = z.input<typeof lotterySpecSchema>;

export function parseLotterySpec(input: unknown): LotterySpec {
  return parseSpec(lotterySpecSchema, input, 'lottery spec');
}

export function parseBranchSpec(input: unknown): BranchSpec {
  return parseSpec(branchSpecSchema, input, 'branch spec');
}

/** The rewind step as a number: 0 for initialisation. */
export function rewindStep(to: RewindSpec): number {
  return to === 'init' ? 0 : to.step;
}

/** A short readable name for a branch, used in workflow ids, reports and the UI. */
export function branchLabel(b: BranchSpec): string {
  switch (b.kind) {
    case 'reinit':
      return `${b.kind}-s${b.seed}`;
    case 'random-prune':
      return `${b.kind}${b.scope === 'global' ? '-global' : ''}-s${b.seed}`;
    case 'one-shot':
      return 'one-shot';
    case 'rewind':
      return `rewind-${b.to === 'init' ? 'init' : `step${b.to.step}`}`;
  }
}

/** The id a trunk gives a branch's child workflow (and `lth branch` uses to find or start it). */
export function branchWorkflowId(trunkWorkflowId: string, b: BranchSpec): string {
  return `${trunkWorkflowId}.${branchLabel(b)}`;
}
