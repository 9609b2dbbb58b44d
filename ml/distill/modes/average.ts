import { softTerm } from '../terms.js';
import type { KdModeDef } from './kind.js';

/** LIB-KD's averaged target: one token learns from the mean of the teachers' distributions. */
export const average: KdModeDef = {
  description: "one distillation token, soft KD from the mean of the teachers' distributions",
  teachers: [1, 8],
  objective: (n, o) => ({
    classWeight: 1,
    terms: [
      softTerm(
        1,
        Array.from({ length: n }, (_, i) => i),
        o.kdWeight,
        o,
      ),
    ],
  }),
};
