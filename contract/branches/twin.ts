// The ticket's twin (Frankle et al. 2020, "Linear Mode Connectivity and the LTH"): the same masks and the same
// rewind point as the trunk's level L, trained again with another data order (seed). The loss barrier on the
// straight path between the ticket and its twin is the level's instability: matching tickets are stable (barrier
// near 0). `lth analyze` measures it (measure `twin-path`).
import { z } from 'zod';

import { deriveSeed } from '../../ml/rng';
import type { PerLevelBranchKind } from './kind';

const schema = z.object({ kind: z.literal('twin'), seed: z.number().int().min(0).default(1) }).strict();
export type TwinBranch = z.infer<typeof schema>;

export const twin: PerLevelBranchKind<typeof schema> = {
  kind: 'twin',
  schema,
  runs: 'per-level',
  summary: 'the ticket retrained from its own rewind point with another data order (seed): its instability',
  label: (b) => `twin-s${b.seed}`,
  flag: { usage: 'twin', parse: (v) => (v === 'twin' ? { kind: 'twin' } : null) },
  options: ['seed'],
  fromOptions: (o) => ({ kind: 'twin', ...(o.seed === undefined ? {} : { seed: o.seed }) }),
  lineage: (b) => b,
  async derive(b, t) {
    return {
      masks: await t.trunkMask(),
      start: await t.rewindPoint(),
      dataSeed: deriveSeed(t.spec.train.seed, 'twin', b.seed),
    };
  },
};
