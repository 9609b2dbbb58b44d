// Where the survivors of a pruning step go back to: their initial values, or the dense run's state at step k.
import { z } from 'zod';

export const rewindSpecSchema = z.union([
  z.literal('init'),
  z.object({ step: z.number().int().positive() }).strict(),
]);

export type RewindSpec = z.infer<typeof rewindSpecSchema>;

/** The rewind step as a number: 0 for initialisation. */
export function rewindStep(to: RewindSpec): number {
  return to === 'init' ? 0 : to.step;
}

/** How a rewind point is written in labels: `init` or `step<k>`. */
export function rewindName(to: RewindSpec): string {
  return to === 'init' ? 'init' : `step${to.step}`;
}
