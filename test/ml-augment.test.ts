// Seeded augmentation: a sample's view depends only on (policy, seed, epoch, index), so a student can recompute
// the view a teacher's stored logits were computed on.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { selectBackend } from '../ml/backend';
import { augmentImages, shiftFor, viewFor } from '../ml/data/augment';
import { datasetFromSplit, loadDataset } from '../ml/data';
import { hostBytesEqual } from '../ml/tensors';
import { train, type TrainConfig, type TrainState } from '../ml/train';

const data = loadDataset('mnist', 'test', { limit: 50 });

test("'none' returns the images unchanged", () => {
  const out = augmentImages(data, [3, 7], { policy: 'none', seed: 1 }, 0);
  assert.deepEqual(out.subarray(0, 784), data.images.subarray(3 * 784, 4 * 784));
  assert.deepEqual(out.subarray(784), data.images.subarray(7 * 784, 8 * 784));
});

test('random-shift views depend on the sample, seed and epoch, not on the batch', () => {
  const spec = { policy: 'random-shift' as const, seed: 5 };
  const alone = augmentImages(data, [9], spec, 2);
  const inBatch = augmentImages(data, [4, 9, 1], spec, 2);
  assert.deepEqual(inBatch.subarray(784, 2 * 784), alone);
  assert.deepEqual(augmentImages(data, [9], spec, 2), alone, 'same arguments, same bits');
  const shifts = new Set<string>();
  for (let i = 0; i < 50; i++) shifts.add(shiftFor(spec, 0, i).join(','));
  assert.ok(shifts.size > 10, `only ${shifts.size} distinct shifts over 50 samples`);
  for (const s of shifts) for (const d of s.split(',').map(Number)) assert.ok(Math.abs(d) <= 2);
  assert.notDeepEqual(
    Array.from({ length: 20 }, (_, i) => shiftFor(spec, 0, i).join()),
    Array.from({ length: 20 }, (_, i) => shiftFor(spec, 1, i).join()),
    'another epoch draws other views',
  );
  assert.notDeepEqual(
    Array.from({ length: 20 }, (_, i) => shiftFor(spec, 0, i).join()),
    Array.from({ length: 20 }, (_, i) => shiftFor({ ...spec, seed: 6 }, 0, i).join()),
    'another seed draws other views',
  );
});

test('a shift moves pixels and fills with the background value', () => {
  const spec = { policy: 'random-shift' as const, seed: 1, maxShift: 3 };
  let index = -1;
  let dy = 0;
  let dx = 0;
  for (let i = 0; i < 50 && index < 0; i++) {
    [dy, dx] = shiftFor(spec, 0, i);
    if (dy > 0 && dx > 0) index = i;
  }
  assert.ok(index >= 0, 'no sample with a positive shift on both axes');
  const out = augmentImages(data, [index], spec, 0);
  const src = data.images.subarray(index * 784, (index + 1) * 784);
  const background = Math.min(...Array.from(data.images));
  for (let y = 0; y < 28; y++) {
    for (let x = 0; x < 28; x++) {
      const expected = y - dy >= 0 && x - dx >= 0 ? src[(y - dy) * 28 + (x - dx)] : background;
      assert.equal(out[y * 28 + x], expected, `pixel (${y}, ${x})`);
    }
  }
});

test('bad augmentation specs are refused naming the field', () => {
  assert.throws(
    () => augmentImages(data, [0], { policy: 'flip' as 'none', seed: 1 }, 0),
    /augmentation.policy/,
  );
  assert.throws(() => augmentImages(data, [0], { policy: 'none', seed: -1 }, 0), /augmentation.seed/);
  assert.throws(
    () => augmentImages(data, [0], { policy: 'random-shift', seed: 1, maxShift: 28 }, 0),
    /augmentation.maxShift/,
  );
  assert.throws(() => augmentImages(data, [50], { policy: 'none', seed: 1 }, 0), /outside/);
});

test("crop-flip is torchvision's RandomCrop(padding) then RandomHorizontalFlip, on RGB images too", () => {
  const [n, h, w, c] = [40, 6, 5, 3];
  const rgb = datasetFromSplit(
    { name: 'mnist', split: 'train', description: 'synthetic rgb' },
    {
      pixels: Uint8Array.from({ length: n * h * w * c }, (_, i) => (i * 29 + 7) % 256),
      labels: Int32Array.from({ length: n }, (_, i) => i % 2),
      shape: [n, h, w, c],
      classes: 2,
    },
    { mean: [0.4, 0.5, 0.6], std: [0.2, 0.3, 0.25] },
  );
  const pad = 2;
  const spec = { policy: 'crop-flip' as const, seed: 9, maxShift: pad };
  const views = Array.from({ length: n }, (_, i) => viewFor(spec, 3, i));
  // Every offset and both orientations occur over 40 samples.
  assert.ok(views.some((v) => v.flip) && views.some((v) => !v.flip));
  assert.equal(new Set(views.map((v) => v.dy)).size, 2 * pad + 1);
  const out = augmentImages(
    rgb,
    Array.from({ length: n }, (_, i) => i),
    spec,
    3,
  );
  const background = [0.4 / 0.2, 0.5 / 0.3, 0.6 / 0.25].map((v) => Math.fround(-v));
  for (let i = 0; i < n; i++) {
    const { dy, dx, flip } = views[i]!;
    // Independently: pad the image by `pad` with the background, crop h×w at (pad − dy, pad − dx), mirror.
    const padded = (y: number, x: number, ch: number) => {
      const [sy, sx] = [y - pad, x - pad];
      return sy >= 0 && sy < h && sx >= 0 && sx < w
        ? rgb.images[((i * h + sy) * w + sx) * c + ch]!
        : background[ch]!;
    };
    for (let y = 0; y < h; y++)
      for (let x = 0; x < w; x++)
        for (let ch = 0; ch < c; ch++) {
          const cx = flip ? w - 1 - x : x;
          const want = padded(y + pad - dy, cx + pad - dx, ch);
          assert.equal(out[((i * h + y) * w + x) * c + ch], want, `sample ${i} (${y}, ${x}, ${ch})`);
        }
  }
});

test('plain training with augmentation: resumed mid-epoch it ends with the undisturbed bytes, and the views matter', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const trainData = loadDataset('mnist', 'train', { limit: 48 });
  const testData = loadDataset('mnist', 'test', { limit: 20 });
  const config = (augmentation?: TrainConfig['augmentation']): TrainConfig => ({
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 },
    batchSize: 16,
    iterations: 7,
    evalEvery: 0,
    seed: 4,
    ...(augmentation ? { augmentation } : {}),
  });
  const cfg = config({ policy: 'crop-flip', seed: 1, maxShift: 3 });
  let at5: TrainState | null = null;
  const whole = await train(
    cfg,
    { train: trainData, test: testData },
    {
      checkpointEvery: 5,
      onCheckpoint: async (s) => {
        if (s.step === 5) at5 = s;
      },
    },
  );
  assert.ok(at5);
  const resumed = await train(cfg, { train: trainData, test: testData }, { resumeFrom: at5 });
  for (const [k, t] of Object.entries(whole.state.weights))
    assert.ok(hostBytesEqual(t, resumed.state.weights[k]!), k);
  const plain = await train(config(), { train: trainData, test: testData });
  assert.ok(
    Object.entries(plain.state.weights).some(([k, t]) => !hostBytesEqual(t, whole.state.weights[k]!)),
  );
});
