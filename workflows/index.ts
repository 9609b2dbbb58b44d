// Everything the light worker registers as workflows.
export { trainWorkflow } from './train';
export { lotteryBranchWorkflow, lotteryWorkflow } from './lottery';
export { precomputeLogitsWorkflow } from './logits';
export { distillWorkflow } from './distill';
export { analyzeWorkflow } from './analysis';
export { sweepWorkflow } from './sweep';
export { scheduledRunWorkflow } from './scheduled';
