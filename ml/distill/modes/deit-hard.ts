import type { KdModeDef } from './kind.js';

/** DeiT's hard distillation: the token's label is the teacher's argmax, (1 − α)·CE + α·CE(token, argmax). */
export const deitHard: KdModeDef = {
  description: "DeiT: one token taught by one teacher's argmax, (1 − α)·CE + α·CE",
  teachers: [1, 1],
  objective: (_n, o) => ({
    classWeight: 1 - o.alpha,
    terms: [{ head: 1, teachers: [0], kind: 'hard', weight: o.alpha, temperature: 1 }],
  }),
};
