// What a distillation objective is made of, as plain data (no TF.js): the KD modes (modes/) build it, inside the
// workflow sandbox too, and objective.ts turns it into a loss.

export interface KdTerm {
  /** The student head it trains: 1..T (head 0 is the class head). */
  head: number;
  /** The teachers whose distributions it averages (one for every mode but `average`). */
  teachers: number[];
  kind: 'soft' | 'hard';
  weight: number;
  temperature: number;
}

export interface FeatureTerm {
  /** The teacher whose feature map the patch tokens regress onto. */
  teacher: number;
  weight: number;
}

export interface DistillObjective {
  /** Weight of the cross-entropy of the class head with the labels. */
  classWeight: number;
  terms: KdTerm[];
  features?: FeatureTerm;
}

/** The options every mode reads (validated by objectiveFor). */
export interface KdOptions {
  /** τ of the soft terms. */
  temperature: number;
  /** DeiT's α: (1 − α)·CE + α·KD. */
  alpha: number;
  /** Weight of each KD term in `tokens` and `average`; the class term's is 1. */
  kdWeight: number;
}

/** A soft term: `head` learns from the mean distribution of `teachers` at τ. */
export function softTerm(head: number, teachers: number[], weight: number, o: KdOptions): KdTerm {
  return { head, teachers, kind: 'soft', weight, temperature: o.temperature };
}
