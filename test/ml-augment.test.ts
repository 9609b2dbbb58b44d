// Seeded augmentation: a sample's view depends only on (policy, seed, epoch, index), so a student can recompute
// the view a teacher's stored logits were computed on.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { augmentImages, shiftFor } from '../ml/data/augment';
import { loadDataset } from '../ml/data';

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
