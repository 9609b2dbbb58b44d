// Random pruning: random masks with the ticket's sparsity at each level, rewound like the ticket. Scope
// 'layerwise' (the default) keeps each layer's count; 'global' keeps the total over the layers the trunk prunes.
import { z } from 'zod';

import { denseMasks, masksFromSparsity, prune, sparsityReport } from '../../ml/pruning';
import { deriveSeed } from '../../ml/rng';
import { globalRandomStrategy } from '../pruning';
import type { PerLevelBranchKind } from './kind';

const schema = z
  .object({
    kind: z.literal('random-prune'),
    seed: z.number().int().min(0).default(1),
    // Optional rather than defaulted: an absent scope keeps the lineage hashes of earlier specs.
    scope: z.enum(['layerwise', 'global']).optional(),
  })
  .strict();
export type RandomPruneBranch = z.infer<typeof schema>;

export const randomPrune: PerLevelBranchKind<typeof schema> = {
  kind: 'random-prune',
  schema,
  runs: 'per-level',
  summary:
    "random masks with the ticket's per-layer counts (scope layerwise) or total (global), rewound like it",
  label: (b) => `random-prune${b.scope === 'global' ? '-global' : ''}-s${b.seed}`,
  flag: {
    usage: 'random-prune[:global]',
    parse: (v) => {
      if (v === 'random-prune' || v === 'random-prune:layerwise') return { kind: 'random-prune' };
      if (v === 'random-prune:global') return { kind: 'random-prune', scope: 'global' };
      return null;
    },
  },
  options: ['seed', 'scope'],
  fromOptions: (o) => ({
    kind: 'random-prune',
    ...(o.seed === undefined ? {} : { seed: o.seed }),
    // Layerwise is the default: left out, it names the same lineage as a spec without a scope.
    ...(o.scope === 'global' ? { scope: 'global' } : {}),
  }),
  lineage: (b) => (b.scope === 'layerwise' ? { ...b, scope: undefined } : b),
  async derive(b, t) {
    const seed = deriveSeed(t.spec.train.seed, 'random-prune', b.seed, t.level);
    const ticket = await t.trunkMask();
    const masks =
      b.scope === 'global'
        ? prune(
            await t.denseWeights(),
            denseMasks(t.model.params),
            globalRandomStrategy(t.strategy, sparsityReport(ticket, t.model.params), seed),
          )
        : masksFromSparsity(ticket, seed);
    return { masks, start: await t.rewindPoint() };
  },
};
