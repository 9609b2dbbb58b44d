import { test } from 'node:test';
import assert from 'node:assert/strict';
import * as tf from '@tensorflow/tfjs-core';
import { selectBackend } from '../ml/backend';
import { applyUpdate, type OptimizerSpec } from '../ml/train';

/**
 * torch.optim.SGD / Adam (weight_decay as L2 on the gradient) / AdamW (param.mul_(1 − lr·wd) before the step), one
 * scalar coordinate, in double precision.
 */
function reference(spec: OptimizerSpec, w0: number, grads: number[]): number[] {
  let w = w0;
  let buf = 0;
  let m = 0;
  let v = 0;
  const out: number[] = [];
  grads.forEach((g0, i) => {
    const t = i + 1;
    let g = spec.kind === 'adamw' ? g0 : g0 + (spec.weightDecay ?? 0) * w;
    if (spec.kind === 'adamw') w *= 1 - spec.lr * spec.weightDecay;
    if (spec.kind === 'sgd') {
      if (spec.momentum > 0) {
        buf = t === 1 ? g : spec.momentum * buf + g;
        g = spec.nesterov ? g + spec.momentum * buf : buf;
      }
      w -= spec.lr * g;
    } else {
      m = spec.beta1 * m + (1 - spec.beta1) * g;
      v = spec.beta2 * v + (1 - spec.beta2) * g * g;
      const denom = Math.sqrt(v) / Math.sqrt(1 - spec.beta2 ** t) + spec.eps;
      w -= (spec.lr / (1 - spec.beta1 ** t)) * (m / denom);
    }
    out.push(w);
  });
  return out;
}

const SPECS: OptimizerSpec[] = [
  { kind: 'sgd', lr: 0.1, momentum: 0 },
  { kind: 'sgd', lr: 0.1, momentum: 0.9 },
  { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01 },
  { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
  { kind: 'adam', lr: 0.01, beta1: 0.8, beta2: 0.99, eps: 1e-6, weightDecay: 0.1 },
  { kind: 'adamw', lr: 0.01, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.05 },
];

test('SGD, Adam and AdamW follow torch.optim step for step', async () => {
  await selectBackend({ prefer: 'cpu', log: () => {} });
  const w0 = [0.5, -1.25, 2];
  const gradSeq = [
    [0.3, -0.2, 1.5],
    [-0.1, 0.4, 0.2],
    [0.25, 0.05, -0.7],
    [0.0, -0.3, 0.1],
  ];
  for (const spec of SPECS) {
    const expected = w0.map((w, j) =>
      reference(
        spec,
        w,
        gradSeq.map((g) => g[j]!),
      ),
    );
    let params: Record<string, tf.Tensor> = { p: tf.tensor1d(w0) };
    let slots: Record<string, tf.Tensor> =
      spec.kind !== 'sgd'
        ? { 'm/p': tf.zeros([3]), 'v/p': tf.zeros([3]) }
        : spec.momentum > 0
          ? { 'momentum/p': tf.zeros([3]) }
          : {};
    gradSeq.forEach((g, i) => {
      const grads = { p: tf.tensor1d(g) };
      const next = tf.tidy(() => applyUpdate(spec, params, grads, slots, i + 1));
      tf.dispose([...Object.values(params), ...Object.values(slots), grads.p]);
      params = next.params;
      slots = next.slots;
      const got = Array.from(params.p!.dataSync());
      got.forEach((x, j) => {
        const want = expected[j]![i]!;
        assert.ok(
          Math.abs(x - want) <= 1e-6 * Math.max(1, Math.abs(want)),
          `${JSON.stringify(spec)} step ${i + 1}[${j}]: ${x} vs ${want}`,
        );
      });
    });
    tf.dispose([...Object.values(params), ...Object.values(slots)]);
  }
});
