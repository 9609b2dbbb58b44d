import { softTerm } from '../terms.js';
import type { KdModeDef } from './kind.js';

/** DeiT's soft distillation: one token, one teacher, (1 − α)·CE + α·soft KD. */
export const deitSoft: KdModeDef = {
  description: 'DeiT: one token taught softly by one teacher, (1 − α)·CE + α·KD',
  teachers: [1, 1],
  objective: (_n, o) => ({ classWeight: 1 - o.alpha, terms: [softTerm(1, [0], o.alpha, o)] }),
};
