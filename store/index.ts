export * from './errors.js';
export * from './safetensors.js';
export * from './config.js';
export * from './keys.js';
export * from './artifact-store.js';
export * from './logit-shards.js';
export * from './logit-manifest.js';
export * from './logit-reader.js';
