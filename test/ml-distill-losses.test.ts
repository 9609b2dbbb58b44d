// The distillation losses (ml/distill) on hand-computed cases: soft KD at τ = 1 and τ = 2, its gradient,
// a top-k-reconstructed target, hard KD, the ensemble average, each mode's objective, and the bad input refused.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend, type BackendName } from '../ml/backend';
import {
  averageDistribution,
  distillationLoss,
  distillTokensFor,
  hardKd,
  KD_MODE_DEFS,
  type KdMode,
  objectiveFor,
  softKd,
  teacherDistribution,
  type TeacherTargets,
} from '../ml/distill';

const close = (a: number, b: number, what: string, tol = 1e-6) =>
  assert.ok(Math.abs(a - b) <= tol * Math.max(1, Math.abs(b)), `${what}: ${a} vs ${b}`);
const value = (t: tf.Tensor) => t.dataSync()[0] as number;
const logits = (rows: number[][]): TeacherTargets => ({ kind: 'logits', values: tf.tensor2d(rows) });
const probabilities = (rows: number[][]): TeacherTargets => ({
  kind: 'probabilities',
  values: tf.tensor2d(rows),
});

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  test(`soft KD on two classes is (σ(x) − σ(−x))·x·τ² with x the logit gap over τ, on ${backend}`, async () => {
    await selectBackend({ prefer: backend, log: () => {} });
    tf.tidy(() => {
      // Student [1, 0] and teacher [0, 1]: mirrored distributions, KL = (q1 − q0)·ln(q1/q0) = tanh(x/2)·x, x = 1/τ.
      const s = tf.tensor2d([[1, 0]]);
      const t = logits([[0, 1]]);
      for (const tau of [1, 2]) {
        const x = 1 / tau;
        const expected = tau * tau * Math.tanh(x / 2) * x;
        close(value(softKd(s, teacherDistribution(t, tau), tau)), expected, `τ = ${tau}`);
      }
      // The same distribution: nothing to learn.
      close(value(softKd(s, teacherDistribution(logits([[1, 0]]), 3), 3)), 0, 'identical');
    });
  });

  test(`soft KD's gradient is τ(softmax(s/τ) − q)/B, on ${backend}`, async () => {
    await selectBackend({ prefer: backend, log: () => {} });
    tf.tidy(() => {
      const s = tf.tensor2d([
        [0.5, -1, 2],
        [1, 1, 0],
      ]);
      const q = teacherDistribution(
        logits([
          [2, 0, 1],
          [0, 0, 3],
        ]),
        2,
      );
      const g = tf
        .grad((x: tf.Tensor) => softKd(x as tf.Tensor2D, q, 2))(s)
        .arraySync() as number[][];
      const expected = tf.mul(tf.sub(tf.softmax(tf.mul(s, 0.5)), q), 2 / 2).arraySync() as number[][];
      g.forEach((row, i) => row.forEach((v, j) => close(v, expected[i]![j]!, `grad[${i}][${j}]`, 1e-5)));
    });
  });

  test(`a top-k-reconstructed target is tempered as p^(1/τ) renormalised, on ${backend}`, async () => {
    await selectBackend({ prefer: backend, log: () => {} });
    tf.tidy(() => {
      // Top-2 of four classes, 0.6 and 0.3, the leftover 0.1 spread evenly: what a top-k shard decodes to.
      const p = [0.6, 0.3, 0.05, 0.05];
      const roots = p.map(Math.sqrt);
      const z = roots.reduce((a, b) => a + b, 0);
      const q = roots.map((r) => r / z);
      const got = teacherDistribution(probabilities([p]), 2).arraySync()[0]!;
      q.forEach((v, i) => close(got[i]!, v, `q[${i}]`, 1e-5));
      // Against a uniform student: τ² Σ q ln(q / ¼).
      const expected = 4 * q.reduce((s, v) => s + v * Math.log(v / 0.25), 0);
      close(value(softKd(tf.zeros([1, 4]) as tf.Tensor2D, tf.tensor2d([q]), 2)), expected, 'KL', 1e-5);
      // τ = 1 leaves a distribution as it is.
      assert.deepEqual(
        Array.from(teacherDistribution(probabilities([p]), 1).dataSync()),
        Array.from(Float32Array.from(p)),
      );
    });
  });

  test(`hard KD is cross-entropy to the teacher's argmax; the ensemble target is the mean, on ${backend}`, async () => {
    await selectBackend({ prefer: backend, log: () => {} });
    tf.tidy(() => {
      const teacher = logits([[0.1, 2, 0.3]]);
      close(
        value(hardKd(tf.zeros([1, 3]) as tf.Tensor2D, tf.argMax(teacher.values, 1) as tf.Tensor1D)),
        Math.log(3),
        'ln 3',
      );
      // Uniform [½, ½] and certain [1, 0] average to [¾, ¼]; a student at exactly that has nothing to learn.
      const avg = averageDistribution([logits([[0, 0]]), probabilities([[1, 0]])], 1).arraySync()[0]!;
      close(avg[0]!, 0.75, 'avg[0]');
      close(avg[1]!, 0.25, 'avg[1]');
      const student = tf.tensor2d([[Math.log(3), 0]]);
      close(value(softKd(student, tf.tensor2d([avg]), 1)), 0, 'KL to the average', 1e-6);
    });
  });
}

test('each mode weighs its terms as its paper does, on the heads it names', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  assert.deepEqual(objectiveFor('none', 0), { classWeight: 1, terms: [] });
  const tokens = objectiveFor('tokens', 2, { temperature: 3 });
  assert.deepEqual(
    tokens.terms.map((t) => [t.head, t.teachers, t.kind, t.weight, t.temperature]),
    [
      [1, [0], 'soft', 1, 3],
      [2, [1], 'soft', 1, 3],
    ],
  );
  assert.equal(distillTokensFor(tokens), 2);
  assert.equal(distillTokensFor(objectiveFor('average', 2)), 1);
  tf.tidy(() => {
    const labels = tf.tensor1d([2], 'int32');
    const heads = [tf.tensor2d([[0, 0, 1]]), tf.tensor2d([[1, 0, 0]])];
    const teacher = logits([[0, 5, 0]]);
    // DeiT hard, α = ½: ½·CE(head 0, label 2) + ½·CE(head 1, teacher's class 1).
    const { total, parts } = distillationLoss(heads, labels, [teacher], objectiveFor('deit-hard', 1));
    const ce = Math.log(2 + Math.E) - 1;
    const kd = Math.log(Math.E + 2);
    close(parts.ce as number, ce, 'ce');
    close(parts.kd1 as number, kd, 'kd1');
    close(value(total), 0.5 * ce + 0.5 * kd, 'total');
  });
});

test('bad input is refused, naming the option', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  assert.throws(() => objectiveFor('tokens', 2, { temperature: 0 }), /temperature: must be > 0/);
  assert.throws(() => objectiveFor('deit-soft', 2), /teachers: mode deit-soft takes 1 teacher\(s\), got 2/);
  assert.throws(() => objectiveFor('average', 0), /teachers: mode average takes 1 to 8 teacher\(s\), got 0/);
  // Every registered mode builds its objective at the bounds of its teacher range, and nowhere outside it.
  for (const [mode, def] of Object.entries(KD_MODE_DEFS) as [KdMode, (typeof KD_MODE_DEFS)[KdMode]][]) {
    for (const n of def.teachers) assert.ok(objectiveFor(mode, n).classWeight >= 0, `${mode} with ${n}`);
    assert.throws(() => objectiveFor(mode, def.teachers[1] + 1), /teachers: mode/);
  }
  tf.tidy(() => {
    const labels = tf.tensor1d([0], 'int32');
    const t = logits([[1, 0]]);
    assert.throws(
      () => distillationLoss([tf.tensor2d([[0, 0]])], labels, [t, t], objectiveFor('tokens', 2)),
      /the student has 0 distillation tokens, the objective uses 2/,
    );
    assert.throws(
      () => distillationLoss([tf.tensor2d([[0, 0]])], labels, [], { classWeight: 0, terms: [] }),
      /weights: the loss terms weigh 0 in all/,
    );
  });
});
