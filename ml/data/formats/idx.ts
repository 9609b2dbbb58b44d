/**
 * A split in IDX files, MNIST's format (KMNIST, EMNIST and Fashion-MNIST's official release use it too): an
 * unsigned-byte image file of 3 dimensions [n, h, w] (one channel) or 4 [n, h, w, c], and a label file [n].
 * EMNIST stores each image transposed; it is read as stored.
 */
import { parseIdx } from '../idx.js';
import { DatasetFormatError } from './types.js';

export interface IdxSplit {
  pixels: Uint8Array;
  labels: Int32Array;
  shape: [number, number, number, number];
}

function parse(bytes: Uint8Array, file: string, dims: number) {
  try {
    return parseIdx(bytes, file, dims);
  } catch (e) {
    // parseIdx names the file already.
    throw new DatasetFormatError(file, (e as Error).message.replace(`${file}: `, ''));
  }
}

export function parseIdxSplit(
  images: { bytes: Uint8Array; file: string },
  labels: { bytes: Uint8Array; file: string },
): IdxSplit {
  const dims = images.bytes[3];
  if (dims !== 3 && dims !== 4)
    throw new DatasetFormatError(
      images.file,
      `an IDX image file has 3 or 4 dimensions, this one ${String(dims)}`,
    );
  const img = parse(images.bytes, images.file, dims);
  const lab = parse(labels.bytes, labels.file, 1);
  const [n = 0, h = 0, w = 0, c = 1] = img.shape;
  if (lab.shape[0] !== n)
    throw new DatasetFormatError(labels.file, `${lab.shape[0]} labels for the ${n} images of ${images.file}`);
  if (n === 0 || h === 0 || w === 0 || c === 0)
    throw new DatasetFormatError(images.file, `images have an empty dimension [${img.shape.join(', ')}]`);
  return { pixels: img.data, labels: Int32Array.from(lab.data), shape: [n, h, w, c] };
}
