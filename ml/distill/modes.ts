// The distillation modes by name, with nothing behind them: specs validate against this list in the workflow
// sandbox, which cannot load TF.js. objective.ts says what each one means.
export const KD_MODES = ['none', 'tokens', 'average', 'deit-soft', 'deit-hard'] as const;
export type KdMode = (typeof KD_MODES)[number];
