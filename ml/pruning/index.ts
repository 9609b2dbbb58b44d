/**
 * Iterative magnitude pruning (IMP) on host tensors: plain Float32Array arithmetic, exact and deterministic, with
 * no TF.js backend involved, so a mask is the same bits on every machine and backend. See README.md here.
 */
export {
  applyMasks,
  denseMasks,
  prunableNames,
  sparsityReport,
  validateMasks,
  type LayerSparsity,
  type SparsityReport,
} from './masks.js';
export { masksFromSparsity, prune, pruneCount } from './prune.js';
export {
  parsePruningStrategy,
  PRUNING_STRATEGY_KINDS,
  type PruningStrategy,
  type PruningStrategyKind,
} from './strategy.js';
