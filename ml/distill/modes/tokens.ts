import { softTerm } from '../terms.js';
import type { KdModeDef } from './kind.js';

/** CiT / Co-advise, LIB-KD: distillation token i learns from teacher i alone. */
export const tokens: KdModeDef = {
  description: 'one distillation token per teacher, soft KD from that teacher on its head (CiT, LIB-KD)',
  teachers: [1, 8],
  objective: (n, o) => ({
    classWeight: 1,
    terms: Array.from({ length: n }, (_, i) => softTerm(i + 1, [i], o.kdWeight, o)),
  }),
};
