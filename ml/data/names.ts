// The datasets ml/ can load, as a list with no loader behind it: specs validate against it inside the workflow
// sandbox, which cannot import the loaders (they read files).
export const DATASET_NAMES = ['mnist', 'fashion-mnist'] as const;
export type DatasetName = (typeof DATASET_NAMES)[number];

/** Augmentation policies (ml/data/augment.ts), listed here for schemas that cannot import the loaders. */
export const AUGMENTATION_POLICIES = ['none', 'random-shift', 'crop-flip'] as const;
export type AugmentationPolicy = (typeof AUGMENTATION_POLICIES)[number];
