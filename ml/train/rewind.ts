/**
 * Rewind points for iterative magnitude pruning. A rewind point is a whole training state (weights, optimizer
 * slots, data position): level L of IMP continues from it with level L's mask applied, so "rewind to step k"
 * restores the dense run's optimizer moments and data order at step k as well as its weights, and "rewind to
 * initialisation" is the state at step 0 (fresh optimizer, first batch).
 */
import { MlInputError } from '../errors.js';
import { getModel } from '../models/index.js';
import { applyMasks } from '../pruning/index.js';
import { hostTensor, type NamedTensors } from '../tensors.js';
import { slotParam, slotSpecs } from './optimizers.js';
import { cursorAt, parseTrainConfig, type TrainConfig, type TrainState } from './types.js';

/**
 * The state a run is in before its first step: these weights, zero optimizer slots, the first batch next. With
 * `step` > 0, the same weights placed at that step of the schedule: the data order continues from there, as for a
 * rewind point, but nothing was learned (a re-initialised control that starts where the ticket starts).
 */
export function initialTrainState(
  config: TrainConfig,
  trainSize: number,
  weights: NamedTensors,
  step = 0,
): TrainState {
  const cfg = parseTrainConfig(config);
  const model = getModel(cfg.model);
  const optimizer: NamedTensors = {};
  for (const s of slotSpecs(cfg.optimizer, model.params)) optimizer[s.name] = hostTensor('float32', s.shape);
  const copy = applyMasks(weights, {});
  if (!Number.isInteger(step) || step < 0 || (step > 0 && step >= cfg.iterations))
    throw new MlInputError(`start step ${step} must be in 0..${cfg.iterations - 1}`);
  return {
    step,
    weights: copy,
    optimizer,
    rng: cursorAt(step, cfg.seed, trainSize, cfg.batchSize),
    evals: [],
    lastLoss: null,
  };
}

/**
 * `state` with pruned coordinates set to +0 in the weights and in every optimizer slot of a masked weight
 * (slot names end in `/<param>`), and no evaluation history: the masked run is a new run from that point.
 */
export function maskTrainState(state: TrainState, masks: NamedTensors): TrainState {
  const weights = applyMasks(state.weights, masks);
  const slotMasks: NamedTensors = {};
  for (const name of Object.keys(state.optimizer)) {
    const m = masks[slotParam(name)];
    if (m) slotMasks[name] = m;
  }
  const optimizer = applyMasks(state.optimizer, slotMasks);
  return {
    step: state.step,
    weights,
    optimizer,
    rng: state.rng,
    evals: [],
    lastLoss: null,
    // The steps that made it are still its own: a run from here continues on their engine family.
    ...(state.engine ? { engine: state.engine } : {}),
  };
}
