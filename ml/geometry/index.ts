/**
 * The geometry of a solution (../../../shared/REFERENCES.md, "Loss-landscape and geometry measures"): loss along
 * lines and planes, curvature, flatness and basin volume, all in the subspace a mask leaves free. Pure compute on
 * TF.js and host vectors; no Temporal, no store. See README.md here.
 */
export { distance, layerNorms, maskJaccard, signAgreement } from './descriptors.js';
export { filterNormalizedDirection } from './directions.js';
export {
  basinRadii,
  epsSharpness,
  logGamma,
  logUnitBallVolume,
  logVolume,
  pacBayesSigma,
  type BasinEstimate,
  type PacBayesSigma,
  type Sharpness,
} from './flatness.js';
export {
  hessianTrace,
  hessianVectorProduct,
  topEigenvalues,
  type EigenState,
  type Eigenpair,
  type TraceEstimate,
} from './hessian.js';
export {
  batchObjective,
  classifierLoss,
  modelObjective,
  type Batch,
  type BatchLoss,
  type LossValue,
  type Objective,
} from './objective.js';
export {
  barrier,
  interpolatedBarrier,
  linearPath,
  linspace,
  slice1d,
  slice2d,
  type LinearPath,
  type Slice1D,
  type Slice2D,
} from './slices.js';
export {
  axpy,
  dot,
  flatten,
  gaussian,
  norm,
  paramSpace,
  rademacher,
  restrict,
  unflatten,
  unitDirection,
  type ParamSpace,
  type Vec,
} from './space.js';
export {
  MEASURE_CONFIG_SCHEMAS,
  MEASURE_INPUTS,
  MEASURE_REGISTRY,
  MEASURE_NAMES,
  MEASURE_NEEDS,
  type MeasureConfig,
  type MeasureColumn,
  type MeasureEntry,
  type MeasureInput,
  type MeasureName,
} from './measure-config.js';
export { MEASURES, type MeasureContext, type MeasureOutput, type MeasureState } from './measures.js';
export { replicatePlan, summarizeReplicates, type Replicate, type Replicates } from './replicates.js';
