// IMP again with another rewind point: a whole lineage of its own that shares the trunk's dense level 0.
import { z } from 'zod';

import { rewindName, rewindSpecSchema } from '../rewind';
import type { TrunkBranchKind } from './kind';

const schema = z.object({ kind: z.literal('rewind'), to: rewindSpecSchema }).strict();
export type RewindBranch = z.infer<typeof schema>;

export const rewind: TrunkBranchKind<typeof schema> = {
  kind: 'rewind',
  schema,
  summary: 'IMP again, rewinding to another point (to: init | {step: k})',
  label: (b) => `rewind-${rewindName(b.to)}`,
  flag: {
    usage: 'rewind:<step|init>',
    parse: (v) => {
      if (!v.startsWith('rewind:')) return null;
      const to = v.slice('rewind:'.length);
      return { kind: 'rewind', to: to === 'init' ? 'init' : { step: Number(to) } };
    },
  },
  options: ['rewindStep'],
  requires: ['rewindStep'],
  fromOptions: (o) => ({ kind: 'rewind', to: o.rewindStep }),
  // Its lineage is the trunk's with this rewind point (contract/ids.ts), not a branch of it.
  lineage: (b) => b,
  runs: 'trunk',
  rewind: (b) => b.to,
};
