// One-shot pruning: the dense solution pruned once, with the trunk's kind of ranking, to the ticket's sparsity at
// each level, then rewound like the ticket: what iterating buys over pruning once.
import { z } from 'zod';

import { denseMasks, prune, sparsityReport } from '../../ml/pruning';
import { oneShotStrategy } from '../pruning';
import type { PerLevelBranchKind } from './kind';

const schema = z.object({ kind: z.literal('one-shot') }).strict();
export type OneShotBranch = z.infer<typeof schema>;

export const oneShot: PerLevelBranchKind<typeof schema> = {
  kind: 'one-shot',
  schema,
  runs: 'per-level',
  summary: "the dense network pruned once to each level's sparsity, rewound like the ticket",
  label: () => 'one-shot',
  flag: { usage: 'one-shot', parse: (v) => (v === 'one-shot' ? { kind: 'one-shot' } : null) },
  options: [],
  fromOptions: () => ({ kind: 'one-shot' }),
  lineage: (b) => b,
  async derive(_b, t) {
    const target = sparsityReport(await t.trunkMask(), t.model.params);
    const masks = prune(
      await t.denseWeights(),
      denseMasks(t.model.params),
      oneShotStrategy(t.strategy, target),
    );
    return { masks, start: await t.rewindPoint() };
  },
};
