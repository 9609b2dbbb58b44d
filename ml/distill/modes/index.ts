// The KD modes: a new one is a file here and a line below. Plain data, loadable in the workflow sandbox (specs
// validate mode names and teacher counts against it); ml/distill/objective.ts turns a mode into a loss.
import { average } from './average.js';
import { deitHard } from './deit-hard.js';
import { deitSoft } from './deit-soft.js';
import type { KdModeDef } from './kind.js';
import { none } from './none.js';
import { tokens } from './tokens.js';

export const KD_MODE_DEFS = {
  none,
  tokens,
  average,
  'deit-soft': deitSoft,
  'deit-hard': deitHard,
} as const satisfies Record<string, KdModeDef>;

export type KdMode = keyof typeof KD_MODE_DEFS;
export const KD_MODES = Object.keys(KD_MODE_DEFS) as [KdMode, ...KdMode[]];
export type { KdModeDef };
