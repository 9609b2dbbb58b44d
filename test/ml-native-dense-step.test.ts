/**
 * The tape-free training step of dense nets on native TensorFlow (ml/native/dense-step.ts): LeNet-300-100
 * trained with it stores the same bytes as with tfjs's tape (LTH_NATIVE_STEP=off), step for step, with masks,
 * momentum, Nesterov, weight decay and partial batches; it leaks no tensor; it is not used where it cannot be
 * bit-identical (Adam, another backend). Its own process: loading the native backend changes the process's gradients.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { Rng } from '../ml/rng';
import { hostBytesEqual, hostTensor, type NamedTensors } from '../ml/tensors';
import {
  crossEntropy,
  Trainer,
  type OptimizerSpec,
  type StepObjective,
  type TrainConfig,
  type TrainState,
} from '../ml/train';
import { oneHotHost } from '../ml/train/evaluate';
import { nativeDenseStep } from '../ml/native/dense-step';
import { withEnv } from './support/env';
import { randomMasks } from './support/random-weights';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

// 100 samples in batches of 16: the 7th step of each epoch has 4 samples.
const data = loadDataset('mnist', 'train', { limit: 100 });
const STEPS = 16;

function config(optimizer: OptimizerSpec): TrainConfig {
  return {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer,
    batchSize: 16,
    iterations: 1000,
    evalEvery: 0,
    seed: 5,
  };
}

function masks(seed: number): NamedTensors {
  return randomMasks(getModel('lenet-300-100').params, seed, 0.4);
}

/** Momentum slots with non-zero values everywhere, pruned coordinates included (a state not from maskTrainState). */
function busySlots(seed: number): NamedTensors {
  const rng = new Rng(seed);
  const out: NamedTensors = {};
  for (const p of getModel('lenet-300-100').params) {
    const m = hostTensor('float32', p.shape);
    for (let i = 0; i < m.data.length; i++) m.data[i] = (rng.float() - 0.5) * 0.01;
    out[`momentum/${p.name}`] = m;
  }
  return out;
}

/** A trainer with the native dense step (`native`) or with the tape. */
function trainer(cfg: TrainConfig, native: boolean, withMasks: boolean, optimizer?: NamedTensors): Trainer {
  const make = () =>
    new Trainer(cfg, data, {
      weights: getModel('lenet-300-100').init(cfg.seed),
      ...(withMasks ? { masks: masks(3) } : {}),
      ...(optimizer ? { optimizer } : {}),
    });
  return native ? make() : withEnv({ LTH_NATIVE_STEP: 'off' }, make);
}

function assertSame(a: TrainState, b: TrainState, what: string): void {
  for (const [k, t] of Object.entries(a.weights))
    assert.ok(hostBytesEqual(t, b.weights[k]!), `${what}: weights ${k}`);
  assert.deepEqual(Object.keys(a.optimizer).sort(), Object.keys(b.optimizer).sort());
  for (const [k, t] of Object.entries(a.optimizer))
    assert.ok(hostBytesEqual(t, b.optimizer[k]!), `${what}: optimizer ${k}`);
  assert.ok(Object.is(a.lastLoss, b.lastLoss), `${what}: loss ${a.lastLoss} vs ${b.lastLoss}`);
}

/** A trainer with the native step and one with the tape, from the same state on native TensorFlow; both disposed. */
async function withPair(
  cfg: TrainConfig,
  init: { masks: boolean; optimizer?: NamedTensors },
  body: (fast: Trainer, tape: Trainer) => Promise<void>,
): Promise<void> {
  await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  const fast = trainer(cfg, true, init.masks, init.optimizer);
  const tape = trainer(cfg, false, init.masks, init.optimizer);
  try {
    await body(fast, tape);
  } finally {
    fast.dispose();
    tape.dispose();
  }
}

const SGD: [string, OptimizerSpec][] = [
  ['SGD with momentum', { kind: 'sgd', lr: 0.1, momentum: 0.9 }],
  [
    'SGD with Nesterov momentum and weight decay',
    { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
  ],
  ['plain SGD', { kind: 'sgd', lr: 0.1, momentum: 0 }],
];

for (const [name, optimizer] of SGD) {
  for (const withMasks of [true, false]) {
    test(
      `the native dense step stores the tape's bytes: ${name}${withMasks ? ', masked' : ''}`,
      { skip },
      async () => {
        await withPair(config(optimizer), { masks: withMasks }, async (fast, tape) => {
          const native = nativeDenseStep(getModel('lenet-300-100'), optimizer);
          assert.ok(native, 'the native step applies here');
          native.dispose();
          for (let s = 1; s <= STEPS; s++) {
            fast.trainStep();
            tape.trainStep();
            if (s % 4 === 0 || s === 7)
              assertSame(await fast.snapshot([]), await tape.snapshot([]), `step ${s}`);
          }
        });
      },
    );
  }
}

test(
  "the native dense step stores the tape's bytes when pruned coordinates start with momentum (it re-masks then)",
  { skip },
  async () => {
    await withPair(config(SGD[0]![1]), { masks: true, optimizer: busySlots(8) }, async (fast, tape) => {
      for (let s = 1; s <= 8; s++) {
        fast.trainStep();
        tape.trainStep();
      }
      const a = await fast.snapshot([]);
      assertSame(a, await tape.snapshot([]), 'step 8');
      const w = a.weights['fc1.weight']!;
      const k = masks(3)['fc1.weight']!;
      for (let i = 0; i < k.data.length; i++)
        if (k.data[i] === 0) assert.ok(Object.is(w.data[i], 0), `pruned weight ${i} is +0`);
    });
  },
);

test(
  "evaluations and snapshots between native dense steps store the tape's bytes; a step with an objective the trainer was not made for is refused",
  { skip },
  async () => {
    await withPair(config(SGD[1]![1]), { masks: true }, async (fast, tape) => {
      for (let s = 1; s <= 12; s++) {
        fast.trainStep();
        tape.trainStep();
        if (s % 4 === 0) {
          const [a, b] = [await fast.evaluate(data, 50), await tape.evaluate(data, 50)];
          assert.deepEqual(a, b, `evaluation after step ${s}`);
          assertSame(await fast.snapshot([]), await tape.snapshot([]), `step ${s}`);
        }
      }
      // The native dense step computes the plain cross-entropy only; its trainer was chosen for that.
      const objective: StepObjective<null> = {
        prepare: () => Promise.resolve(null),
        loss: (model, params, batch) =>
          crossEntropy(
            model.forward(params, batch.x, true, batch.noise),
            tf.cast(tf.oneHot(batch.labelTensor, model.numClasses), 'float32') as tf.Tensor2D,
          ),
      };
      assert.throws(
        () => fast.trainStep({ def: objective, extras: null }),
        /made for objective 'none' .* given a step with objective 'opaque'/,
      );
    });
  },
);

test(
  "the op-for-op update (the GPU build's) stores the fused kernels' bytes: momentum and plain SGD, re-masked",
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const lenet = getModel('lenet-300-100');
    const hostParams = lenet.init(4);
    const keepHost = masks(6);
    for (const optimizer of [SGD[0]![1], SGD[2]![1]]) {
      const steps = [true, false].map((fused) =>
        nativeDenseStep(lenet, optimizer, { remask: true, fused, masked: Object.keys(keepHost) }),
      );
      const tensors = (h: NamedTensors) =>
        Object.fromEntries(Object.entries(h).map(([n, t]) => [n, tf.tensor(t.data, t.shape, 'float32')]));
      const params = tensors(hostParams);
      const slots = tensors(busySlots(2));
      const keep = tensors(keepHost);
      try {
        for (const step of steps)
          step!.load(params, optimizer.kind === 'sgd' && optimizer.momentum > 0 ? slots : {});
        for (let s = 0; s < 5; s++) {
          const b = 16;
          const x = data.images.subarray(s * b * 784, (s + 1) * b * 784);
          const y = oneHotHost(data.labels.subarray(s * b, (s + 1) * b), 10);
          for (const step of steps) step!.step(keep, { x, y, b }).dispose();
        }
        const [fused, plain] = steps.map((step) => step!.read());
        for (const kind of ['params', 'slots'] as const)
          for (const [n, t] of Object.entries(fused![kind])) {
            const [a, c] = [t.dataSync(), plain![kind][n]!.dataSync()];
            assert.ok(
              a.every((v, i) => Object.is(v, c[i])),
              `${optimizer.kind} momentum ${'momentum' in optimizer ? optimizer.momentum : '-'}: ${kind} ${n}`,
            );
          }
        for (const v of [fused!, plain!]) tf.dispose([...Object.values(v.params), ...Object.values(v.slots)]);
      } finally {
        for (const step of steps) step?.dispose();
        tf.dispose([...Object.values(params), ...Object.values(slots), ...Object.values(keep)]);
      }
    }
  },
);

test('the native dense step leaks no tensor, step after step, and none once disposed', { skip }, async () => {
  await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  const baseline = tf.memory().numTensors;
  const t = trainer(config(SGD[0]![1]), true, true);
  t.trainStep();
  await t.readLoss();
  const after1 = tf.memory().numTensors;
  for (let s = 0; s < 10; s++) t.trainStep();
  await t.readLoss();
  assert.equal(tf.memory().numTensors, after1, 'tensors after 11 steps');
  t.dispose();
  assert.equal(tf.memory().numTensors, baseline);
});

test(
  'the tape still runs what the native step cannot reproduce: Adam, other backends',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const lenet = getModel('lenet-300-100');
    const adam: OptimizerSpec = { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
    assert.equal(nativeDenseStep(lenet, adam), null);
    assert.equal(nativeDenseStep(getModel('conv-2'), SGD[0]![1]), null, 'conv-2 declares no dense layers');
    assert.equal(nativeDenseStep(lenet, SGD[0]![1], { remask: true }, { LTH_NATIVE_STEP: 'off' }), null);
    await selectBackend({ prefer: 'cpu', log: () => {} });
    assert.equal(nativeDenseStep(lenet, SGD[0]![1]), null, 'not on the cpu backend');
  },
);
