import type { DistillObjective, KdOptions } from '../terms.js';

/**
 * A way for the student to learn from its teachers: one file in this folder and one line in index.ts. Plain data,
 * no TF.js: specs check teacher counts against it inside the workflow sandbox.
 */
export interface KdModeDef {
  /** What it is, for help texts and the README. */
  description: string;
  /** How many teachers it takes, inclusive. */
  teachers: readonly [min: number, max: number];
  /** The loss terms for this many teachers (already checked against `teachers`). */
  objective(teachers: number, o: KdOptions): DistillObjective;
}
