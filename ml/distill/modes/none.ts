import type { KdModeDef } from './kind.js';

export const none: KdModeDef = {
  description: 'no teacher: cross-entropy on the class head (the plain student)',
  teachers: [0, 0],
  objective: () => ({ classWeight: 1, terms: [] }),
};
