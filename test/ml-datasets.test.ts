import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { augmentImages, shiftFor } from '../ml/data/augment';
import {
  balancedSubset,
  datasetFromSplit,
  epochOrder,
  imageSize,
  fashionSplitIndices,
  FASHION_TRAIN_PER_CLASS,
  loadDataset,
  NORMALISATION,
  type Dataset,
  type DatasetName,
} from '../ml/data';
import { parseIdx } from '../ml/data/idx';

function classCounts(d: Dataset): number[] {
  const c = new Array<number>(10).fill(0);
  for (const l of d.labels) c[l] = (c[l] ?? 0) + 1;
  return c;
}

function checkShape(d: Dataset, name: DatasetName, split: 'train' | 'test', n: number): void {
  assert.equal(d.name, name);
  assert.equal(d.split, split);
  assert.equal(d.n, n);
  assert.equal(d.images.length, n * 784);
  assert.equal(d.labels.length, n);
  assert.deepEqual([d.height, d.width, d.channels, d.numClasses], [28, 28, 1, 10]);
  for (const l of d.labels) assert.ok(l >= 0 && l <= 9, `label ${l}`);
  assert.ok(d.splitDescription.length > 20);
}

/** Pixel bytes recovered from the normalised floats (exact: 256 well-separated levels). */
function pixelBytes(d: Dataset): Uint8Array {
  const { mean, std } = NORMALISATION[d.name];
  const out = new Uint8Array(d.images.length);
  for (let i = 0; i < out.length; i++) out[i] = Math.round(((d.images[i] as number) * std + mean) * 255);
  return out;
}

function fingerprint(d: Dataset): string {
  return createHash('sha256').update(pixelBytes(d)).update(new Uint8Array(d.labels.buffer)).digest('hex');
}

test('MNIST: official split sizes, labels 0..9, normalised to mean 0 and std 1', () => {
  const train = loadDataset('mnist', 'train');
  const test = loadDataset('mnist', 'test');
  checkShape(train, 'mnist', 'train', 60000);
  checkShape(test, 'mnist', 'test', 10000);
  assert.ok(classCounts(train).every((c) => c > 5000));
  let s = 0;
  let s2 = 0;
  for (const v of train.images) {
    s += v;
    s2 += v * v;
  }
  const mean = s / train.images.length;
  const std = Math.sqrt(s2 / train.images.length - mean * mean);
  assert.ok(Math.abs(mean) < 1e-3, `mean ${mean}`);
  assert.ok(Math.abs(std - 1) < 1e-3, `std ${std}`);
  assert.match(train.splitDescription, /MNIST official train split/);
  // First training label of MNIST is a 5, the first test label a 7 (well-known).
  assert.equal(train.labels[0], 5);
  assert.equal(test.labels[0], 7);
});

test('limit takes a deterministic class-balanced subset', () => {
  const a = loadDataset('mnist', 'train', { limit: 1000 });
  const b = loadDataset('mnist', 'train', { limit: 1000 });
  checkShape(a, 'mnist', 'train', 1000);
  assert.deepEqual(classCounts(a), new Array(10).fill(100));
  assert.deepEqual(a.images, b.images);
  assert.deepEqual(a.labels, b.labels);
  assert.match(a.splitDescription, /class-balanced subset of 1000/);
  const odd = loadDataset('mnist', 'test', { limit: 25 });
  assert.deepEqual(classCounts(odd), [3, 3, 3, 3, 3, 2, 2, 2, 2, 2]);
  assert.equal(loadDataset('mnist', 'test', { limit: 10 ** 6 }).n, 10000);
  assert.throws(() => loadDataset('mnist', 'test', { limit: 0 }), /limit/);
  // A class that runs out is skipped and the others fill up.
  const sub = balancedSubset(Int32Array.from([0, 0, 0, 0, 1]), 4, 2);
  assert.deepEqual(Array.from(sub), [0, 1, 2, 4]);
});

test('Fashion-MNIST: deterministic seeded split, 6000/1000 per class, disjoint by record', () => {
  const train = loadDataset('fashion-mnist', 'train');
  const test = loadDataset('fashion-mnist', 'test');
  checkShape(train, 'fashion-mnist', 'train', 60000);
  checkShape(test, 'fashion-mnist', 'test', 10000);
  assert.deepEqual(classCounts(train), new Array(10).fill(6000));
  assert.deepEqual(classCounts(test), new Array(10).fill(1000));
  assert.match(train.splitDescription, /seeded split v1/);
  assert.match(test.splitDescription, /not the official split/);

  // Disjoint and complete by construction, for every class.
  for (let c = 0; c < 10; c++) {
    const { train: tr, test: te } = fashionSplitIndices(c, 7000);
    assert.equal(tr.length, FASHION_TRAIN_PER_CLASS);
    const all = [...tr, ...te].sort((x, y) => x - y);
    assert.deepEqual(
      all,
      Array.from({ length: 7000 }, (_, i) => i),
    );
    assert.deepEqual(fashionSplitIndices(c, 7000), { train: tr, test: te });
  }

  // By content: only the source's own byte-identical duplicates (54 pairs in all) may straddle the split.
  const imageKey = (px: Uint8Array, i: number) =>
    createHash('sha1')
      .update(px.subarray(i * 784, (i + 1) * 784))
      .digest('base64');
  const trainPixels = pixelBytes(train);
  const seen = new Set<string>();
  for (let i = 0; i < train.n; i++) seen.add(imageKey(trainPixels, i));
  const testPixels = pixelBytes(test);
  let shared = 0;
  for (let i = 0; i < test.n; i++) if (seen.has(imageKey(testPixels, i))) shared++;
  assert.ok(shared <= 54, `${shared} test images also in train`);

  // The split must never change silently: every Fashion-MNIST result depends on it.
  assert.equal(fingerprint(test), FASHION_TEST_FINGERPRINT);

  // The normalisation constants are the train split's statistics.
  let s = 0;
  let s2 = 0;
  for (const v of trainPixels) {
    const x = v / 255;
    s += x;
    s2 += x * x;
  }
  const mean = s / trainPixels.length;
  const std = Math.sqrt(s2 / trainPixels.length - mean * mean);
  assert.ok(Math.abs(mean - NORMALISATION['fashion-mnist'].mean) < 5e-4, `mean ${mean}`);
  assert.ok(Math.abs(std - NORMALISATION['fashion-mnist'].std) < 5e-4, `std ${std}`);
});

const FASHION_TEST_FINGERPRINT = 'dfc3f396f32f5069922ad5686620e5b3b5128cbbeee5a0699b5fa2f28c0ecd89';

test('epochOrder is a permutation, a pure function of (n, seed, epoch)', () => {
  const n = 1000;
  const o = epochOrder(n, 1, 0);
  assert.deepEqual(
    Array.from(o).sort((a, b) => a - b),
    Array.from({ length: n }, (_, i) => i),
  );
  assert.deepEqual(epochOrder(n, 1, 0), o);
  assert.notDeepEqual(epochOrder(n, 1, 1), o);
  assert.notDeepEqual(epochOrder(n, 2, 0), o);
  // Asking for epoch 5 first gives the same order as after walking epochs 0..4.
  for (let e = 0; e < 5; e++) epochOrder(n, 1, e);
  assert.deepEqual(epochOrder(n, 1, 5), epochOrder(n, 1, 5));
  assert.throws(() => epochOrder(n, 1, -1), /epoch/);
});

test('IDX parser validates magic numbers and sizes', () => {
  const good = Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 7, 8, 9]);
  assert.deepEqual(parseIdx(good, 'x', 1), { shape: [3], data: Uint8Array.from([7, 8, 9]) });
  assert.throws(
    () => parseIdx(Uint8Array.from([0, 0, 8, 3, 0, 0, 0, 1, 0]), 'labels', 1),
    /labels: bad IDX magic/,
  );
  assert.throws(() => parseIdx(Uint8Array.from([0, 0, 9, 1, 0, 0, 0, 1, 0]), 'x', 1), /bad IDX magic/);
  assert.throws(
    () => parseIdx(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 4, 7, 8, 9]), 'x', 1),
    /3 bytes after the header/,
  );
  assert.throws(
    () => loadDataset('cifar' as DatasetName, 'train'),
    /unknown dataset 'cifar'; known: mnist, fashion-mnist/,
  );
});

test('a split of any shape: each channel normalised by its own statistics, balanced over its classes, shifted per channel', () => {
  const [n, h, w, c] = [12, 5, 4, 3];
  const pixels = Uint8Array.from({ length: n * h * w * c }, (_, i) => (i * 13) % 256);
  const labels = Int32Array.from({ length: n }, (_, i) => i % 3);
  const mean = [0.1, 0.5, 0.9];
  const std = [0.2, 0.25, 0.5];
  const d = datasetFromSplit(
    { name: 'mnist', split: 'train', description: 'synthetic' },
    { pixels, labels, shape: [n, h, w, c], classes: 3 },
    { mean, std },
    { limit: 6 },
  );
  assert.deepEqual([d.n, d.height, d.width, d.channels, d.numClasses], [6, h, w, c, 3]);
  assert.equal(imageSize(d), h * w * c);
  // Round-robin over 3 classes in split order: images 0..5.
  assert.deepEqual([...d.labels], [0, 1, 2, 0, 1, 2]);
  for (let k = 0; k < d.images.length; k++) {
    const want = Math.fround(
      ((pixels[k] as number) / 255 - (mean[k % c] as number)) / (std[k % c] as number),
    );
    assert.equal(d.images[k], want, `value ${k}`);
  }
  assert.match(d.splitDescription, /mean \[0\.1, 0\.5, 0\.9\]/);
  // A shift fills with each channel's background (raw 0) and moves whole pixels, channels together.
  const spec = { policy: 'random-shift' as const, seed: 1, maxShift: 1 };
  const i = [0, 1, 2, 3, 4, 5].find((j) => shiftFor(spec, 0, j).every((s) => s !== 0)) as number;
  const [dy, dx] = shiftFor(spec, 0, i);
  const out = augmentImages(d, [i], spec, 0);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++)
      for (let ch = 0; ch < c; ch++) {
        const [sy, sx] = [y - dy, x - dx];
        const want =
          sy >= 0 && sy < h && sx >= 0 && sx < w
            ? d.images[i * h * w * c + (sy * w + sx) * c + ch]
            : Math.fround(-(mean[ch] as number) / (std[ch] as number));
        assert.equal(out[(y * w + x) * c + ch], want, `(${y}, ${x}, ${ch})`);
      }
  assert.throws(
    () =>
      datasetFromSplit(
        { name: 'mnist', split: 'train', description: '' },
        { pixels, labels, shape: [n, h, w, c], classes: 3 },
        { mean: [0], std: [1] },
      ),
    /normalisation has 1 means and 1 stds for 3 channels/,
  );
});
