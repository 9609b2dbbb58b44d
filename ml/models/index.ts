import { MlInputError } from '../errors.js';
import { conv2, conv4 } from './conv.js';
import { lenet300100 } from './lenet.js';
import { cnnTeacher, involutionTeacher } from './teachers.js';
import type { ModelDef } from './types.js';

export type { ModelDef, ParamSpec } from './types.js';
export { kaimingNormal } from './init.js';

const MODELS: Record<string, ModelDef> = {
  [lenet300100.name]: lenet300100,
  [conv2.name]: conv2,
  [conv4.name]: conv4,
  [cnnTeacher.name]: cnnTeacher,
  [involutionTeacher.name]: involutionTeacher,
};

export const MODEL_NAMES: readonly string[] = Object.keys(MODELS);

export function getModel(name: string): ModelDef {
  const m = MODELS[name];
  if (!m) throw new MlInputError(`unknown model '${name}'; known models: ${MODEL_NAMES.join(', ')}`);
  return m;
}
