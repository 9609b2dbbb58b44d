// Small files in the real dataset formats, written here (nothing is downloaded): the CIFAR-10 and CIFAR-100 binary
// releases (as their .tar.gz), IDX and NPZ. Pixel values are a known function of (image, channel, position), so a
// reader's layout can be checked exactly. npyFile writes the bytes NumPy 2.4 writes for the same array (checked by
// hand against np.save).
import { gzipSync } from 'node:zlib';

import { zipSync } from 'fflate';
import { createTar } from 'nanotar';

/** The byte a fixture stores for image i, channel ch, pixel position p (row-major within the image). */
export const pixelValue = (i: number, ch: number, p: number): number => (i * 7 + ch * 50 + p * 3) % 256;

/** CIFAR records of `n` images (labels from `label(i)`): 1 or 2 label bytes, then the R, G and B planes. */
export function cifarRecords(n: number, first: number, labels: (i: number) => number[]): Uint8Array {
  const lb = labels(0).length;
  const out = new Uint8Array(n * (lb + 3072));
  for (let k = 0; k < n; k++) {
    const i = first + k;
    const at = k * (lb + 3072);
    labels(i).forEach((l, j) => (out[at + j] = l));
    for (let ch = 0; ch < 3; ch++)
      for (let p = 0; p < 1024; p++) out[at + lb + ch * 1024 + p] = pixelValue(i, ch, p);
  }
  return out;
}

export const CIFAR10_NAMES = [
  'airplane',
  'automobile',
  'bird',
  'cat',
  'deer',
  'dog',
  'frog',
  'horse',
  'ship',
  'truck',
];

/** cifar-10-binary.tar.gz with `perBatch` images in each of the five training batches and `test` in the test batch. */
export function cifar10Archive(perBatch: number, test: number, label = (i: number) => [i % 10]): Uint8Array {
  const files = [
    ...[1, 2, 3, 4, 5].map((b) => ({
      name: `cifar-10-batches-bin/data_batch_${b}.bin`,
      data: cifarRecords(perBatch, (b - 1) * perBatch, label),
    })),
    { name: 'cifar-10-batches-bin/test_batch.bin', data: cifarRecords(test, 5 * perBatch, label) },
    {
      name: 'cifar-10-batches-bin/batches.meta.txt',
      data: new TextEncoder().encode(`${CIFAR10_NAMES.join('\n')}\n\n`),
    },
  ];
  return gzipSync(createTar(files));
}

/** cifar-100-binary.tar.gz: coarse label i % 20, fine label i % 100. */
export function cifar100Archive(train: number, test: number): Uint8Array {
  const label = (i: number) => [i % 20, i % 100];
  const names = (k: number, what: string) =>
    new TextEncoder().encode(Array.from({ length: k }, (_, i) => `${what}${i}`).join('\n'));
  return gzipSync(
    createTar([
      { name: 'cifar-100-binary/train.bin', data: cifarRecords(train, 0, label) },
      { name: 'cifar-100-binary/test.bin', data: cifarRecords(test, train, label) },
      { name: 'cifar-100-binary/coarse_label_names.txt', data: names(20, 'coarse') },
      { name: 'cifar-100-binary/fine_label_names.txt', data: names(100, 'fine') },
    ]),
  );
}

/** An IDX file of unsigned bytes. */
export function idxFile(shape: number[], data: Uint8Array): Uint8Array {
  const header = new Uint8Array(4 + 4 * shape.length);
  const view = new DataView(header.buffer);
  view.setUint32(0, (0x08 << 8) | shape.length, false);
  shape.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  const out = new Uint8Array(header.length + data.length);
  out.set(header);
  out.set(data, header.length);
  return out;
}

/** A .npy file (format 1.0) of a C-order array. */
export function npyFile(descr: string, shape: number[], data: ArrayBufferView): Uint8Array {
  const dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': (${shape.join(', ')}${shape.length === 1 ? ',' : ''}), }`;
  // NumPy pads the header with spaces and a newline so that the data start on a multiple of 64 bytes.
  const unpadded = 10 + dict.length + 1;
  const header = `${dict}${' '.repeat((64 - (unpadded % 64)) % 64)}\n`;
  const out = new Uint8Array(10 + header.length + data.byteLength);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength), 10 + header.length);
  return out;
}

/** An .npz of images (uint8 NHWC) and labels, stored (np.savez) or deflated (np.savez_compressed). */
export function npzFile(
  images: { descr?: string; shape: number[]; data: ArrayBufferView },
  labels: { descr: string; shape: number[]; data: ArrayBufferView },
  compressed = false,
): Uint8Array {
  return zipSync(
    {
      'images.npy': npyFile(images.descr ?? '|u1', images.shape, images.data),
      'labels.npy': npyFile(labels.descr, labels.shape, labels.data),
    },
    { level: compressed ? 6 : 0 },
  );
}
