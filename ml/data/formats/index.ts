export {
  cifarFromArchive,
  cifarFromFiles,
  parseCifarRecords,
  type CifarOptions,
  type CifarVariant,
} from './cifar.js';
export { parseIdxSplit, type IdxSplit } from './idx.js';
export { parseNpy, type NpyArray } from './npy.js';
export { parseNpzSplit, type NpzSplit } from './npz.js';
export { channelStatistics } from './statistics.js';
export { checkLabels, DatasetFormatError, type ImageSplit, type ImageSplits } from './types.js';
