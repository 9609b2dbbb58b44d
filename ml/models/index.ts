import { MlInputError } from '../errors.js';
import { conv2, conv4, conv6 } from './conv.js';
import { lenetModel } from './lenet.js';
import { MODEL_NAMES, type ModelName } from './names.js';
import { cnnTeacher, involutionTeacher } from './teachers.js';
import { MNIST_INPUT, type ModelDef, type ModelInput } from './types.js';
import { vitTiny } from './vit.js';

export type { ModelDef, ModelInput, ParamSpec, TorchLayout, TorchParam } from './types.js';
export { MNIST_INPUT } from './types.js';
export { kaimingNormal } from './init.js';
export { VIT_TINY, vitConfigSchema, vitModel, type VitConfig, type VitModelDef } from './vit.js';
export { MODEL_NAMES, type ModelName };

/** The model registry: one line per model, keyed by its name in names.ts; each builds the model for an input. */
const MODELS: { [name in ModelName]: (input: ModelInput) => ModelDef } = {
  'lenet-300-100': lenetModel,
  'conv-2': conv2,
  'conv-4': conv4,
  'conv-6': conv6,
  'cnn-teacher': cnnTeacher,
  'involution-teacher': involutionTeacher,
  'vit-tiny': vitTiny,
};

// One definition per (model, input): callers compare definitions and cache by them.
const built = new Map<string, ModelDef>();

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/** The model `name` built for `input` (default MNIST's 28×28×1 and 10 classes). */
export function getModel(name: string, input: ModelInput = MNIST_INPUT): ModelDef {
  if (!isModelName(name))
    throw new MlInputError(`unknown model '${name}'; known models: ${MODEL_NAMES.join(', ')}`);
  const [h, w, c] = input.shape;
  for (const [field, v] of Object.entries({ height: h, width: w, channels: c, classes: input.classes }))
    if (!Number.isInteger(v) || v < 1)
      throw new MlInputError(`model input ${field} must be a positive integer, got ${v}`);
  const key = `${name}/${h}x${w}x${c}/${input.classes}`;
  let m = built.get(key);
  if (!m) {
    m = MODELS[name](input);
    if (m.name !== name) throw new Error(`internal: model registry maps '${name}' to '${m.name}'`);
    built.set(key, m);
  }
  return m;
}

/** What a dataset's images and classes make a model's input. */
export function inputOf(data: {
  height: number;
  width: number;
  channels: number;
  numClasses: number;
}): ModelInput {
  return { shape: [data.height, data.width, data.channels], classes: data.numClasses };
}
