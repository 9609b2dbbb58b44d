// The models ml/ provides, as a list with no TensorFlow behind it: specs validate model names against it inside the
// workflow sandbox, which cannot import the models. ml/models/index.ts maps each name to its definition, and the
// compiler rejects a name without a definition or a definition without a name.
export const MODEL_NAMES = [
  'lenet-300-100',
  'conv-2',
  'conv-4',
  'conv-6',
  'cnn-teacher',
  'involution-teacher',
  'vit-tiny',
] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/**
 * The models with a last feature map (ModelDef.features), which feature distillation regresses onto; a spec checks
 * against this list where TF.js cannot load (test/ml-distill-features.test.ts keeps it equal to the registry).
 */
export const FEATURE_MAP_MODELS = [
  'conv-2',
  'conv-4',
  'conv-6',
  'cnn-teacher',
] as const satisfies readonly ModelName[];
