// Float64 references for the exact Hessian (ml/second-order.ts, ml/geometry/hessian.ts): two small ReLU networks
// (an MLP; a conv + max-pool net) evaluated in float64 with their activation pattern and pooling argmax frozen at a
// base point, which is the function autograd differentiates twice. With the pattern frozen the loss is smooth, so
// second differences of it in float64 give the full Hessian to ~1e-8; its eigenvalues come from Jacobi rotations.
// The same nets are built from TF.js ops (the ops the project's models use) for the code under test.
import * as tf from '@tensorflow/tfjs-core';

import type { Batch, BatchLoss } from '../../ml/geometry';
import type { ParamSpec } from '../../ml/models/types';
import { Rng } from '../../ml/rng';

export interface Net {
  name: string;
  params: ParamSpec[];
  inputShape: number[];
  classes: number;
  /** The TF.js forward pass (logits). */
  forward: BatchLoss['forward'];
  /** Float64 logits of every example at `theta` (flat, in `params` order), with `pattern` frozen if given. */
  logits64(
    theta: Float64Array,
    x: Float64Array,
    n: number,
    pattern: Pattern | null,
  ): { z: Float64Array; pattern: Pattern };
}

/** Which pre-activations were positive and where each pooling window's maximum was, per example. */
export interface Pattern {
  relu: Uint8Array[];
  argmax: Int32Array[];
}

const spec = (name: string, shape: number[], prunable: boolean): ParamSpec => ({
  name,
  shape,
  kind: prunable ? 'weight' : 'bias',
  prunable,
  torch: { name, layout: 'as-is' },
});

function offsets(params: ParamSpec[]): Map<string, number> {
  const out = new Map<string, number>();
  let o = 0;
  for (const p of params) {
    out.set(p.name, o);
    o += p.shape.reduce((a, b) => a * b, 1);
  }
  return out;
}

/** h [n, in] · W [in, out] + b, in float64, then ReLU with a frozen (or recorded) pattern where `relu` is set. */
function dense64(
  theta: Float64Array,
  h: Float64Array,
  n: number,
  wAt: number,
  bAt: number,
  fin: number,
  fout: number,
  relu: { frozen: Uint8Array | null; record: Uint8Array[] } | null,
): Float64Array {
  const out = new Float64Array(n * fout);
  for (let s = 0; s < n; s++) {
    for (let j = 0; j < fout; j++) {
      let acc = theta[bAt + j] as number;
      for (let i = 0; i < fin; i++) acc += (h[s * fin + i] as number) * (theta[wAt + i * fout + j] as number);
      out[s * fout + j] = acc;
    }
  }
  if (relu) return applyRelu(out, relu);
  return out;
}

function applyRelu(v: Float64Array, relu: { frozen: Uint8Array | null; record: Uint8Array[] }): Float64Array {
  const on = relu.frozen ?? Uint8Array.from(v, (x) => (x > 0 ? 1 : 0));
  if (!relu.frozen) relu.record.push(on);
  return v.map((x, i) => (on[i] ? x : 0));
}

/** 784-free MLP: in → hidden… → classes, ReLU between. */
export function mlp(name: string, widths: number[]): Net {
  const params: ParamSpec[] = [];
  for (let i = 0; i < widths.length - 1; i++) {
    params.push(spec(`fc${i + 1}.weight`, [widths[i] as number, widths[i + 1] as number], true));
    params.push(spec(`fc${i + 1}.bias`, [widths[i + 1] as number], false));
  }
  const at = offsets(params);
  const layers = widths.length - 1;
  return {
    name,
    params,
    inputShape: [widths[0] as number],
    classes: widths[layers] as number,
    forward(p, b) {
      let h = b.x;
      for (let i = 1; i <= layers; i++) {
        const z = tf.add(
          tf.matMul(h as tf.Tensor2D, p[`fc${i}.weight`] as tf.Tensor2D),
          p[`fc${i}.bias`] as tf.Tensor,
        );
        h = i < layers ? tf.relu(z) : z;
      }
      return h;
    },
    logits64(theta, x, n, pattern) {
      const record: Uint8Array[] = [];
      let h = x;
      for (let i = 1; i <= layers; i++) {
        const relu = i < layers ? { frozen: pattern?.relu[i - 1] ?? null, record } : null;
        h = dense64(
          theta,
          h,
          n,
          at.get(`fc${i}.weight`) as number,
          at.get(`fc${i}.bias`) as number,
          widths[i - 1] as number,
          widths[i] as number,
          relu,
        );
      }
      return { z: h, pattern: pattern ?? { relu: record, argmax: [] } };
    },
  };
}

/**
 * [s, s, 1] → conv3×3 'same' (c channels) + bias → ReLU → 2×2 max pool → flatten (h, w, c) → dense (hidden, ReLU)
 * → classes. s even.
 */
export function convPool(name: string, s: number, c: number, hidden: number, classes: number): Net {
  const half = s / 2;
  const flat = half * half * c;
  const params = [
    spec('conv.weight', [3, 3, 1, c], true),
    spec('conv.bias', [c], false),
    spec('fc1.weight', [flat, hidden], true),
    spec('fc1.bias', [hidden], false),
    spec('fc2.weight', [hidden, classes], true),
    spec('fc2.bias', [classes], false),
  ];
  const at = offsets(params);
  return {
    name,
    params,
    inputShape: [s, s, 1],
    classes,
    forward(p, b) {
      const z = tf.add(
        tf.conv2d(b.x as tf.Tensor4D, p['conv.weight'] as tf.Tensor4D, 1, 'same'),
        p['conv.bias'] as tf.Tensor,
      );
      const pooled = tf.maxPool(tf.relu(z) as tf.Tensor4D, 2, 2, 'valid');
      const h = tf.relu(
        tf.add(
          tf.matMul(tf.reshape(pooled, [-1, flat]) as tf.Tensor2D, p['fc1.weight'] as tf.Tensor2D),
          p['fc1.bias'] as tf.Tensor,
        ),
      );
      return tf.add(tf.matMul(h as tf.Tensor2D, p['fc2.weight'] as tf.Tensor2D), p['fc2.bias'] as tf.Tensor);
    },
    logits64(theta, x, n, pattern) {
      const record: Uint8Array[] = [];
      const argmaxes: Int32Array[] = [];
      const [wAt, bAt] = [at.get('conv.weight') as number, at.get('conv.bias') as number];
      // conv 'same' (pad 1), NHWC, filter [kh, kw, 1, c]
      const conv = new Float64Array(n * s * s * c);
      for (let e = 0; e < n; e++)
        for (let r = 0; r < s; r++)
          for (let q = 0; q < s; q++)
            for (let k = 0; k < c; k++) {
              let acc = theta[bAt + k] as number;
              for (let i = 0; i < 3; i++)
                for (let j = 0; j < 3; j++) {
                  const [rr, qq] = [r + i - 1, q + j - 1];
                  if (rr < 0 || qq < 0 || rr >= s || qq >= s) continue;
                  acc += (x[(e * s + rr) * s + qq] as number) * (theta[wAt + (i * 3 + j) * c + k] as number);
                }
              conv[((e * s + r) * s + q) * c + k] = acc;
            }
      const act = applyRelu(conv, { frozen: pattern?.relu[0] ?? null, record });
      const argmax = pattern?.argmax[0] ?? new Int32Array(n * flat);
      const pooled = new Float64Array(n * flat);
      for (let e = 0; e < n; e++)
        for (let r = 0; r < half; r++)
          for (let q = 0; q < half; q++)
            for (let k = 0; k < c; k++) {
              const out = ((e * half + r) * half + q) * c + k;
              if (!pattern) {
                let best = -Infinity;
                let where = -1;
                for (let i = 0; i < 2; i++)
                  for (let j = 0; j < 2; j++) {
                    const idx = ((e * s + 2 * r + i) * s + 2 * q + j) * c + k;
                    if ((act[idx] as number) > best) [best, where] = [act[idx] as number, idx];
                  }
                argmax[out] = where;
              }
              pooled[out] = act[argmax[out] as number] as number;
            }
      if (!pattern) argmaxes.push(argmax);
      const h = dense64(
        theta,
        pooled,
        n,
        at.get('fc1.weight') as number,
        at.get('fc1.bias') as number,
        flat,
        hidden,
        {
          frozen: pattern?.relu[1] ?? null,
          record,
        },
      );
      const z = dense64(
        theta,
        h,
        n,
        at.get('fc2.weight') as number,
        at.get('fc2.bias') as number,
        hidden,
        classes,
        null,
      );
      return { z, pattern: pattern ?? { relu: record, argmax: argmaxes } };
    },
  };
}

/** Mean softmax cross-entropy of float64 logits [n, k] against integer labels. */
export function crossEntropy64(z: Float64Array, labels: Int32Array, k: number): number {
  const n = labels.length;
  let sum = 0;
  for (let s = 0; s < n; s++) {
    const row = z.subarray(s * k, (s + 1) * k);
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, v) => a + Math.exp(v - m), 0));
    sum += lse - (row[labels[s] as number] as number);
  }
  return sum / n;
}

export interface Problem {
  net: Net;
  n: number;
  x: Float64Array;
  labels: Int32Array;
  theta: Float64Array;
  /** 1 where a coordinate is free. */
  free: Uint8Array;
}

/** Random inputs, labels, weights (Kaiming-like scale) and a mask pruning `prunedFraction` of each weight. */
export function randomProblem(net: Net, n: number, seed: number, prunedFraction = 0.3): Problem {
  const rng = new Rng(seed);
  const inputSize = net.inputShape.reduce((a, b) => a * b, 1);
  // float32 values, so that TF.js and the float64 loops evaluate the same point.
  const x = Float64Array.from({ length: n * inputSize }, () => Math.fround(rng.normal()));
  const labels = Int32Array.from({ length: n }, () => Math.floor(rng.float() * net.classes));
  const thetaParts: number[] = [];
  const freeParts: number[] = [];
  for (const p of net.params) {
    const size = p.shape.reduce((a, b) => a * b, 1);
    const fanIn = p.shape.length === 4 ? 9 * (p.shape[2] as number) : (p.shape[0] as number);
    for (let i = 0; i < size; i++) {
      thetaParts.push(p.prunable ? rng.normal() * Math.sqrt(2 / fanIn) : 0.1 * rng.normal());
      freeParts.push(p.prunable && rng.float() < prunedFraction ? 0 : 1);
    }
  }
  const free = Uint8Array.from(freeParts);
  const theta = Float64Array.from(thetaParts, (v, i) => (free[i] ? Math.fround(v) : 0));
  return { net, n, x, labels, theta, free };
}

/** The loss as a float64 function of θ with the base point's pattern frozen. */
export function frozenLoss(problem: Problem): (theta: Float64Array) => number {
  const { net, x, n, labels } = problem;
  const { pattern } = net.logits64(problem.theta, x, n, null);
  return (theta) => crossEntropy64(net.logits64(theta, x, n, pattern).z, labels, net.classes);
}

/** The full Hessian on the free coordinates (`index` lists them), by second differences of the frozen loss. */
export function hessian64(problem: Problem, step = 1e-4): { index: number[]; h: Float64Array[] } {
  const f = frozenLoss(problem);
  const index = [...problem.free.keys()].filter((i) => problem.free[i] === 1);
  const m = index.length;
  const h = Array.from({ length: m }, () => new Float64Array(m));
  const at = (moves: [number, number][]) => {
    const t = Float64Array.from(problem.theta);
    for (const [i, d] of moves) t[i] = (t[i] as number) + d;
    return f(t);
  };
  for (let a = 0; a < m; a++) {
    for (let b = a; b < m; b++) {
      const [i, j] = [index[a] as number, index[b] as number];
      const v =
        (at([
          [i, step],
          [j, step],
        ]) -
          at([
            [i, step],
            [j, -step],
          ]) -
          at([
            [i, -step],
            [j, step],
          ]) +
          at([
            [i, -step],
            [j, -step],
          ])) /
        (4 * step * step);
      (h[a] as Float64Array)[b] = v;
      (h[b] as Float64Array)[a] = v;
    }
  }
  return { index, h };
}

/** Eigenvalues of a symmetric matrix (cyclic Jacobi rotations), ascending. */
export function symmetricEigenvalues(matrix: Float64Array[]): number[] {
  const m = matrix.length;
  const a = matrix.map((r) => Float64Array.from(r));
  const get = (i: number, j: number) => (a[i] as Float64Array)[j] as number;
  const set = (i: number, j: number, v: number) => ((a[i] as Float64Array)[j] = v);
  for (let sweep = 0; sweep < 100; sweep++) {
    let off = 0;
    for (let i = 0; i < m; i++) for (let j = i + 1; j < m; j++) off += get(i, j) ** 2;
    if (off < 1e-22) break;
    for (let p = 0; p < m; p++) {
      for (let q = p + 1; q < m; q++) {
        const apq = get(p, q);
        if (Math.abs(apq) < 1e-300) continue;
        const theta = (get(q, q) - get(p, p)) / (2 * apq);
        const t = Math.sign(theta || 1) / (Math.abs(theta) + Math.sqrt(theta * theta + 1));
        const c = 1 / Math.sqrt(t * t + 1);
        const s = t * c;
        for (let k = 0; k < m; k++) {
          const [akp, akq] = [get(k, p), get(k, q)];
          set(k, p, c * akp - s * akq);
          set(k, q, s * akp + c * akq);
        }
        for (let k = 0; k < m; k++) {
          const [apk, aqk] = [get(p, k), get(q, k)];
          set(p, k, c * apk - s * aqk);
          set(q, k, s * apk + c * aqk);
        }
      }
    }
  }
  return Array.from({ length: m }, (_, i) => get(i, i)).sort((x, y) => x - y);
}

/** H·v for a full-space v from the free-coordinate Hessian (0 on pruned coordinates). */
export function multiply(ref: { index: number[]; h: Float64Array[] }, v: Float64Array): Float64Array {
  const out = new Float64Array(v.length);
  ref.index.forEach((i, a) => {
    let acc = 0;
    ref.index.forEach((j, b) => (acc += ((ref.h[a] as Float64Array)[b] as number) * (v[j] as number)));
    out[i] = acc;
  });
  return out;
}

/** The problem's examples as one TF.js batch (one-hot labels). */
export function problemBatch(problem: Problem): Batch {
  const { net, n } = problem;
  return {
    x: tf.tensor(Float32Array.from(problem.x), [n, ...net.inputShape]),
    y: tf.cast(tf.oneHot(tf.tensor1d(problem.labels, 'int32'), net.classes), 'float32'),
    n,
  };
}
