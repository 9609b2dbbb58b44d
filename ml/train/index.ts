export type {
  DataCursor,
  EvalRecord,
  OptimizerSpec,
  TrainConfig,
  TrainProgress,
  TrainResult,
  TrainState,
} from './types.js';
export { cursorAt, epochsToIterations, parseTrainConfig, stepsPerEpoch, trainConfigSchema } from './types.js';
export { stateFromTensors, stateToTensors, storedWeights, TRAIN_STATE_FORMAT } from './state.js';
export { batchTensors, crossEntropy, evaluate } from './evaluate.js';
export { applyUpdate, slotSpecs, type SlotSpec } from './optimizers.js';
export { train, Trainer, type StepBatch, type StepObjective, type TrainOptions } from './trainer.js';
export { initialTrainState, maskTrainState } from './rewind.js';
export { MlInputError, TrainingAbortedError, TrainingStoppedError } from '../errors.js';
