import { MlInputError } from '../errors.js';
import { conv2, conv4 } from './conv.js';
import { lenet300100 } from './lenet.js';
import { MODEL_NAMES, type ModelName } from './names.js';
import { cnnTeacher, involutionTeacher } from './teachers.js';
import type { ModelDef } from './types.js';
import { vitTiny } from './vit.js';

export type { ModelDef, ParamSpec, TorchLayout, TorchParam } from './types.js';
export { kaimingNormal } from './init.js';
export { VIT_TINY, vitConfigSchema, vitModel, type VitConfig, type VitModelDef } from './vit.js';
export { MODEL_NAMES, type ModelName };

/** The model registry: one line per model, keyed by its name in names.ts. */
const MODELS: { [name in ModelName]: ModelDef } = {
  'lenet-300-100': lenet300100,
  'conv-2': conv2,
  'conv-4': conv4,
  'cnn-teacher': cnnTeacher,
  'involution-teacher': involutionTeacher,
  'vit-tiny': vitTiny,
};

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

export function getModel(name: string): ModelDef {
  if (!isModelName(name))
    throw new MlInputError(`unknown model '${name}'; known models: ${MODEL_NAMES.join(', ')}`);
  const m = MODELS[name];
  if (m.name !== name) throw new Error(`internal: model registry maps '${name}' to '${m.name}'`);
  return m;
}
