/**
 * NumPy .npz archives (np.savez or np.savez_compressed: a zip of .npy arrays) holding one split: `images`, uint8
 * [n, h, w, c] (or [n, h, w] for one channel), and `labels`, integers [n].
 */
import { unzipSync } from 'fflate';

import { parseNpy, type NpyArray } from './npy.js';
import { DatasetFormatError } from './types.js';

export interface NpzSplit {
  pixels: Uint8Array;
  labels: Int32Array;
  shape: [number, number, number, number];
}

function entry(
  files: Record<string, Uint8Array>,
  name: string,
  file: string,
  accept?: Parameters<typeof parseNpy>[2],
): NpyArray {
  const bytes = files[`${name}.npy`];
  if (!bytes)
    throw new DatasetFormatError(
      file,
      `no '${name}' array (found: ${Object.keys(files).join(', ') || 'nothing'}); save with np.savez(f, images=..., labels=...)`,
    );
  return parseNpy(bytes, `${file}:${name}.npy`, accept);
}

export function parseNpzSplit(bytes: Uint8Array, file: string): NpzSplit {
  let files: Record<string, Uint8Array>;
  try {
    files = unzipSync(bytes);
  } catch (e) {
    throw new DatasetFormatError(file, `not a readable .npz (zip) archive: ${(e as Error).message}`);
  }
  const images = entry(files, 'images', file, { dtypes: ['|u1'], expected: 'uint8 (|u1) pixels 0..255' });
  const labels = entry(files, 'labels', file);
  const dims = images.shape;
  if (dims.length !== 3 && dims.length !== 4)
    throw new DatasetFormatError(
      file,
      `images have shape (${dims.join(', ')}), expected [n, h, w, c] or [n, h, w]`,
    );
  const shape: NpzSplit['shape'] = [
    dims[0] ?? 0,
    dims[1] ?? 0,
    dims[2] ?? 0,
    dims.length === 4 ? (dims[3] ?? 0) : 1,
  ];
  if (shape.some((d) => d === 0))
    throw new DatasetFormatError(file, `images have an empty dimension (${dims.join(', ')})`);
  if (labels.shape.length !== 1 || labels.shape[0] !== shape[0])
    throw new DatasetFormatError(
      file,
      `labels have shape (${labels.shape.join(', ')}), expected (${shape[0]},): one per image`,
    );
  const out = new Int32Array(shape[0]);
  for (let i = 0; i < out.length; i++) {
    const v = Number(labels.data[i]);
    if (!Number.isSafeInteger(v) || v < 0 || v > 0x7fffffff)
      throw new DatasetFormatError(file, `label ${v} of image ${i} is not a class index`);
    out[i] = v;
  }
  return { pixels: images.data as Uint8Array, labels: out, shape };
}
