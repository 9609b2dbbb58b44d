// Random re-initialisation (Frankle & Carbin 2019): the ticket's masks with fresh random weights. It starts where
// the ticket starts in the schedule, at the trunk's rewind step, so it trains exactly as many steps as the ticket
// (open_lth's reinitialisation does the same); only the weights differ.
import { z } from 'zod';

import { deriveSeed } from '../../ml/rng';
import type { PerLevelBranchKind } from './kind';

const schema = z.object({ kind: z.literal('reinit'), seed: z.number().int().min(0).default(1) }).strict();
export type ReinitBranch = z.infer<typeof schema>;

export const reinit: PerLevelBranchKind<typeof schema> = {
  kind: 'reinit',
  schema,
  runs: 'per-level',
  summary: "the ticket's masks with a fresh random initialisation (seed)",
  label: (b) => `reinit-s${b.seed}`,
  flag: { usage: 'reinit', parse: (v) => (v === 'reinit' ? { kind: 'reinit' } : null) },
  options: ['seed'],
  fromOptions: (o) => ({ kind: 'reinit', ...(o.seed === undefined ? {} : { seed: o.seed }) }),
  // Until it started at the rewind step it started at step 0: only lineages that rewind later are new.
  lineage: (b, trunk) => (trunk.rewindStep > 0 ? { ...b, startStep: trunk.rewindStep } : b),
  async derive(b, t) {
    const masks = await t.trunkMask();
    const start = t.freshStart(deriveSeed(t.spec.train.seed, 'reinit', b.seed));
    return { masks, start };
  },
};
