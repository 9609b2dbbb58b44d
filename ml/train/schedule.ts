/**
 * Learning-rate schedules, as open_lth's `get_lr_schedule` (training/optimizers.py) defines them: the step taken at
 * iteration `it` (0-based) uses lr × λ(it), where λ is the product of
 * - step milestones: gamma ^ (the number of milestones ≤ it),
 * - linear warm-up: min(1, it / warmup), so the very first step has lr 0, as in open_lth,
 * - cosine (not in open_lth; torch's CosineAnnealingLR over the run): minFactor + (1 − minFactor)·(1 + cos(π·it/T))/2
 *   with T the run's iterations.
 * Steps are iterations, or open_lth's strings: "80ep", "500it", "2ep100it" (epochs of the run's training set).
 * λ is a pure function of the iteration, computed in double precision, so a resumed run takes the same rates.
 */
import { z } from 'zod';

import { MlInputError } from '../errors.js';

const stepSchema = z.union([
  z.number().int().min(0),
  z
    .string()
    .regex(/^(\d+ep)?(\d+it)?$/, 'a step is an iteration count or a string like "80ep", "500it", "2ep100it"')
    .refine((s) => s.length > 0, 'an empty step'),
]);
export type StepSpec = z.output<typeof stepSchema>;

export const scheduleSchema = z
  .object({
    /** Linear warm-up from 0 over this many steps. */
    warmup: stepSchema.optional(),
    /** Multiply the rate by gamma at each of these steps. */
    milestones: z.array(stepSchema).min(1).optional(),
    gamma: z.number().positive().max(1).optional(),
    /** Cosine decay over the run, to minFactor × lr at its end. */
    cosine: z.boolean().optional(),
    minFactor: z.number().min(0).max(1).optional(),
  })
  .strict()
  .refine((s) => (s.milestones === undefined) === (s.gamma === undefined), {
    message: 'milestones and gamma go together (open_lth: both set or neither)',
    path: ['gamma'],
  })
  .refine((s) => s.minFactor === undefined || s.cosine === true, {
    message: 'minFactor is the end of the cosine decay: set cosine: true',
    path: ['minFactor'],
  })
  .refine((s) => !(s.cosine && s.milestones), {
    message: 'cosine and milestones are two decays: choose one',
    path: ['cosine'],
  });
export type ScheduleSpec = z.output<typeof scheduleSchema>;

/** An iteration from a step spec: a number is one; "Aep Bit" is A·stepsPerEpoch + B. */
export function stepIteration(step: StepSpec, stepsPerEpoch: number): number {
  if (typeof step === 'number') return step;
  const m = /^(?:(\d+)ep)?(?:(\d+)it)?$/.exec(step);
  if (!m || step.length === 0)
    throw new MlInputError(`'${step}' is not a step ("80ep", "500it", "2ep100it")`);
  return Number(m[1] ?? 0) * stepsPerEpoch + Number(m[2] ?? 0);
}

/** λ(it) of `spec` for a run of `iterations` steps of `stepsPerEpoch` per epoch. */
export function lrFactor(
  spec: ScheduleSpec,
  run: { stepsPerEpoch: number; iterations: number },
): (it: number) => number {
  const warmup = spec.warmup === undefined ? 0 : stepIteration(spec.warmup, run.stepsPerEpoch);
  const milestones = (spec.milestones ?? [])
    .map((m) => stepIteration(m, run.stepsPerEpoch))
    .sort((a, b) => a - b);
  const gamma = spec.gamma ?? 1;
  const minFactor = spec.minFactor ?? 0;
  const T = Math.max(1, run.iterations);
  return (it) => {
    let f = 1;
    if (milestones.length > 0) f *= gamma ** milestones.filter((m) => m <= it).length;
    if (warmup > 0) f *= Math.min(1, it / warmup);
    if (spec.cosine) f *= minFactor + ((1 - minFactor) * (1 + Math.cos((Math.PI * Math.min(it, T)) / T))) / 2;
    return f;
  };
}
