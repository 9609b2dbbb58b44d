/**
 * Weights in PyTorch's layout (ml/export): each layout on hand-worked values, the exact round trip for every
 * registered model and a distillation student, refusals that name the tensor, and the PyTorch semantics of the
 * exported convolutional net computed here by hand (NCHW, OIHW, x·Wᵀ) giving our logits. bench/peer.ts checks the
 * same against PyTorch itself for every model.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { fromTorch, permuteAxes, toTorch, torchMetadata } from '../ml/export';
import { getModel, VIT_TINY, vitModel, type ModelDef } from '../ml/models';
import { MODEL_NAMES } from '../ml/models/names';
import { hostBytesEqual, hostTensor, namedFromHost, type HostTensor } from '../ml/tensors';
import { assertClose } from './support/assert-close';
import { randomWeights } from './support/random-weights';

function tensor(shape: number[], values: number[]): HostTensor {
  const t = hostTensor('float32', shape);
  t.data.set(values);
  return t;
}

/** A model of one parameter with the given layout, for hand cases. */
function single(shape: number[], layout: ModelDef['params'][number]['torch']['layout']) {
  return {
    name: 'hand',
    params: [{ name: 'w', shape, kind: 'weight' as const, prunable: true, torch: { name: 't.w', layout } }],
  };
}

/** Every parameter drawn at random (biases too: zeros would hide a misplaced bias). */
test('permuteAxes reorders the axes of a row-major array', () => {
  // [2, 3] transposed.
  assert.deepEqual(
    [...permuteAxes(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3], [1, 0])],
    [1, 4, 2, 5, 3, 6],
  );
  // [2, 2, 2]: output[k][i][j] = input[i][j][k].
  const x = Float32Array.from([0, 1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual([...permuteAxes(x, [2, 2, 2], [2, 0, 1])], [0, 2, 4, 6, 1, 3, 5, 7]);
  assert.deepEqual([...permuteAxes(x, [2, 2, 2], [0, 1, 2])], [...x]);
});

test('a dense weight [in, out] becomes nn.Linear [out, in]', () => {
  const out = toTorch(single([2, 3], 'linear'), { w: tensor([2, 3], [1, 2, 3, 4, 5, 6]) });
  assert.deepEqual(out['t.w']?.shape, [3, 2]);
  assert.deepEqual([...(out['t.w']?.data ?? [])], [1, 4, 2, 5, 3, 6]);
});

test('a convolution HWIO becomes OIHW, a 1×1 convolution [in, out] becomes [out, in, 1, 1]', () => {
  // [kh=1, kw=2, in=2, out=3]: value = 100·kw + 10·in + out, so each output element says where it came from.
  const values: number[] = [];
  for (let w = 0; w < 2; w++)
    for (let i = 0; i < 2; i++) for (let o = 0; o < 3; o++) values.push(100 * w + 10 * i + o);
  const conv = toTorch(single([1, 2, 2, 3], 'conv'), { w: tensor([1, 2, 2, 3], values) })['t.w'];
  assert.deepEqual(conv?.shape, [3, 2, 1, 2]);
  // OIHW: [o][i][0][w].
  const expected: number[] = [];
  for (let o = 0; o < 3; o++)
    for (let i = 0; i < 2; i++) for (let w = 0; w < 2; w++) expected.push(100 * w + 10 * i + o);
  assert.deepEqual([...(conv?.data ?? [])], expected);

  const one = toTorch(single([2, 3], 'conv1x1'), { w: tensor([2, 3], [1, 2, 3, 4, 5, 6]) })['t.w'];
  assert.deepEqual(one?.shape, [3, 2, 1, 1]);
  assert.deepEqual([...(one?.data ?? [])], [1, 4, 2, 5, 3, 6]);
});

test("a dense layer after an (h, w, c) flatten reads PyTorch's (c, h, w) flatten", () => {
  // Map [h=1, w=2, c=2], 2 outputs. Our row r = (y·2 + x)·2 + c; value = 10·r + output.
  const rows = 4;
  const values: number[] = [];
  for (let r = 0; r < rows; r++) for (let o = 0; o < 2; o++) values.push(10 * r + o);
  const out = toTorch(single([rows, 2], { flattened: [1, 2, 2] }), { w: tensor([rows, 2], values) })['t.w'];
  assert.deepEqual(out?.shape, [2, 4]);
  // PyTorch column k = c·2 + x reads our row (x·2 + c).
  const expected: number[] = [];
  for (let o = 0; o < 2; o++)
    for (let c = 0; c < 2; c++) for (let x = 0; x < 2; x++) expected.push(10 * (x * 2 + c) + o);
  assert.deepEqual([...(out?.data ?? [])], expected);
});

test('learned tokens take a leading batch axis; vectors stay as they are', () => {
  const tokens = toTorch(single([2, 3], { shape: [1, 2, 3] }), { w: tensor([2, 3], [1, 2, 3, 4, 5, 6]) })[
    't.w'
  ];
  assert.deepEqual(tokens?.shape, [1, 2, 3]);
  assert.deepEqual([...(tokens?.data ?? [])], [1, 2, 3, 4, 5, 6]);
  const bias = toTorch(single([3], 'as-is'), { w: tensor([3], [7, 8, 9]) })['t.w'];
  assert.deepEqual([...(bias?.data ?? [])], [7, 8, 9]);
});

const student = vitModel('vit-tiny', { ...VIT_TINY, distillTokens: 2, featureChannels: 64 });

test('every model and a distillation student: PyTorch names and shapes, and back to the same bits', () => {
  for (const model of [...MODEL_NAMES.map((m) => getModel(m)), student]) {
    const weights = randomWeights(model.params, 7, 0.1);
    const torch = toTorch(model, weights);
    assert.equal(Object.keys(torch).length, model.params.length, `${model.name}: one tensor per parameter`);
    const back = fromTorch(model, torch);
    for (const p of model.params) {
      assert.ok(
        hostBytesEqual(back[p.name] as HostTensor, weights[p.name] as HostTensor),
        `${model.name} ${p.name}`,
      );
    }
  }
  // The names torch.nn gives the same architectures (bench/peer/lth_models.py).
  const lenet = toTorch(getModel('lenet-300-100'), randomWeights(getModel('lenet-300-100').params, 1, 0.1));
  assert.deepEqual(
    Object.entries(lenet).map(([n, t]) => [n, t.shape]),
    [
      ['fc1.weight', [300, 784]],
      ['fc1.bias', [300]],
      ['fc2.weight', [100, 300]],
      ['fc2.bias', [100]],
      ['fc3.weight', [10, 100]],
      ['fc3.bias', [10]],
    ],
  );
  const vit = toTorch(student, randomWeights(student.params, 1, 0.1));
  assert.deepEqual(vit['tokens']?.shape, [1, 3, 64]);
  assert.deepEqual(vit['position']?.shape, [1, 52, 64]);
  assert.deepEqual(vit['blocks.3.fc2.weight']?.shape, [64, 128]);
  assert.deepEqual(vit['blocks.0.norm1.weight']?.shape, [64]);
  assert.deepEqual(vit['heads.2.weight']?.shape, [10, 64]);
  assert.deepEqual(vit['features.weight']?.shape, [64, 64]);
  assert.deepEqual(torchMetadata(student), {
    format: 'lth.torch-state-dict.v1',
    model: 'vit-tiny',
    config: JSON.stringify(student.config),
  });
  assert.deepEqual(torchMetadata(getModel('conv-2')), { format: 'lth.torch-state-dict.v1', model: 'conv-2' });
});

test('a missing, misshapen or unknown tensor is refused, naming it', () => {
  const model = getModel('lenet-300-100');
  const weights = randomWeights(model.params, 1, 0.1);
  const missing = Object.fromEntries(Object.entries(weights).filter(([name]) => name !== 'fc2.bias'));
  assert.throws(() => toTorch(model, missing), /missing tensor 'fc2\.bias'/);
  assert.throws(
    () => toTorch(model, { ...weights, 'fc1.weight': hostTensor('float32', [300, 784]) }),
    /'fc1\.weight' has shape \[300, 784\], the model's is \[784, 300\]/,
  );
  assert.throws(
    () => toTorch(model, { ...weights, extra: hostTensor('float32', [1]) }),
    /does not have: extra/,
  );
  assert.throws(() => fromTorch(model, weights), /PyTorch state_dict: 'fc1\.weight' has shape \[784, 300\]/);
});

// ---- the exported net run with PyTorch's semantics, written out here -------------------------------------------

/** nn.Conv2d, stride 1, zero padding `pad`: x [C, H, W], w OIHW, b [O]. */
function conv2dNchw(
  x: Float32Array,
  [c, h, w]: [number, number, number],
  weight: HostTensor,
  bias: HostTensor,
  pad: number,
) {
  const [o, , kh, kw] = weight.shape as [number, number, number, number];
  const out = new Float32Array(o * h * w);
  for (let oc = 0; oc < o; oc++)
    for (let y = 0; y < h; y++)
      for (let xx = 0; xx < w; xx++) {
        let s = bias.data[oc] as number;
        for (let ic = 0; ic < c; ic++)
          for (let dy = 0; dy < kh; dy++)
            for (let dx = 0; dx < kw; dx++) {
              const [sy, sx] = [y + dy - pad, xx + dx - pad];
              if (sy < 0 || sy >= h || sx < 0 || sx >= w) continue;
              s +=
                (weight.data[((oc * c + ic) * kh + dy) * kw + dx] as number) *
                (x[(ic * h + sy) * w + sx] as number);
            }
        out[(oc * h + y) * w + xx] = s;
      }
  return out;
}

function maxPool2Relu(x: Float32Array, [c, h, w]: [number, number, number]): Float32Array {
  const out = new Float32Array(c * (h / 2) * (w / 2));
  for (let ch = 0; ch < c; ch++)
    for (let y = 0; y < h / 2; y++)
      for (let xx = 0; xx < w / 2; xx++) {
        let m = -Infinity;
        for (let dy = 0; dy < 2; dy++)
          for (let dx = 0; dx < 2; dx++)
            m = Math.max(m, x[(ch * h + 2 * y + dy) * w + 2 * xx + dx] as number);
        out[(ch * (h / 2) + y) * (w / 2) + xx] = Math.max(m, 0);
      }
  return out;
}

/** nn.Linear: W [out, in], y = W x + b. */
function linearTorch(x: Float32Array, weight: HostTensor, bias: HostTensor, relu: boolean): Float32Array {
  const [o, i] = weight.shape as [number, number];
  const out = new Float32Array(o);
  for (let r = 0; r < o; r++) {
    let s = bias.data[r] as number;
    for (let k = 0; k < i; k++) s += (weight.data[r * i + k] as number) * (x[k] as number);
    out[r] = relu ? Math.max(s, 0) : s;
  }
  return out;
}

test("the exported cnn-teacher, run as PyTorch runs it (NCHW, OIHW, x·Wᵀ), gives our model's logits", async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const model = getModel('cnn-teacher');
  const weights = randomWeights(model.params, 3, 0.1);
  const sd = toTorch(model, weights);
  const get = (name: string) => sd[name] as HostTensor;
  const images = loadDataset('mnist', 'test', { limit: 20 }).images.subarray(0, 2 * 784);
  const ours = tf.tidy(() => model.forward(namedFromHost(weights), tf.tensor(images, [2, 28, 28, 1]), false));
  const expected = await ours.data();
  ours.dispose();
  for (let n = 0; n < 2; n++) {
    // PyTorch's ConvNet(pool_before_relu=True): conv, pool, relu per block; flatten (c, h, w); fc, relu, fc.
    let x: Float32Array = images.slice(n * 784, (n + 1) * 784);
    x = maxPool2Relu(conv2dNchw(x, [1, 28, 28], get('convs.0.weight'), get('convs.0.bias'), 1), [32, 28, 28]);
    x = maxPool2Relu(
      conv2dNchw(x, [32, 14, 14], get('convs.1.weight'), get('convs.1.bias'), 1),
      [64, 14, 14],
    );
    const hidden = linearTorch(x, get('fcs.0.weight'), get('fcs.0.bias'), true);
    const logits = linearTorch(hidden, get('fcs.1.weight'), get('fcs.1.bias'), false);
    assertClose(`image ${n}`, logits, expected.subarray(n * 10, (n + 1) * 10), 1e-4);
  }
});
