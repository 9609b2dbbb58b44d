/**
 * The training step of a fully connected ReLU net (LeNet-300-100) with SGD, run as TensorFlow ops straight on the
 * native binding: no tfjs engine, tape, scopes or Identity copies around each kernel. LeNet's step is ~50 small
 * kernels whose arithmetic is a few milliseconds, and tfjs spends ~20 µs of JavaScript on each op (bench/profile.ts),
 * as much again as the kernels; here an op costs one binding call.
 *
 * Guarantees:
 * - bit-identical to Trainer's tape step on the same backend: the same TensorFlow kernels in the same order with the
 *   same operands (BatchMatMulV2 with the same adjoint flags, AddV2 bias, Relu, SoftmaxCrossEntropyWithLogits, Sum
 *   over the batch for the bias gradient, ReluGrad of the pre-activation, the gradient masked by Mul, then
 *   ml/train/optimizers.ts' SGD update op for op, then the mask re-applied as w·k + 0), so a run, its checkpoints
 *   and a resumed run store the same bytes whichever step ran (test/ml-native-dense-step.test.ts);
 * - used only where that holds: the `tensorflow` backend with the native kernels of ml/native-kernels.ts, a model
 *   that declares its dense layers (ModelDef.dense), the plain cross-entropy objective and SGD; everything else keeps
 *   the tape. LTH_NATIVE_DENSE=off turns it off (to measure it);
 * - every intermediate TensorFlow handle is deleted before step() returns, also when an op throws; the new
 *   parameters, slots and loss come back as tfjs tensors, which the caller owns.
 */
import * as tf from '@tensorflow/tfjs-core';

import { NATIVE_RELU_GRAD, NATIVE_SOFTMAX_XENT } from '../native-kernels.js';
import type { ModelDef } from '../models/types.js';
import type { OptimizerSpec } from './types.js';

/** tfjs-node's binding and backend, as far as this module uses them (untyped across the package boundary). */
interface TensorMetadata {
  id: number;
  shape: number[];
  dtype: number;
}
interface NativeBinding {
  executeOp(name: string, attrs: unknown[], inputIds: number[], numOutputs: number): TensorMetadata[];
  deleteTensor(id: number): void;
  createTensor(shape: number[], dtype: number, values: Float32Array | Int32Array): number;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_BOOL: number;
}
interface NativeBackend {
  binding: NativeBinding;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  /** Registers a handle with the backend and the engine: a tracked tensor (typed TensorInfo in the package). */
  createOutputTensor(m: TensorMetadata): tf.TensorInfo;
}

type Tensors = Record<string, tf.Tensor>;
type SgdSpec = Extract<OptimizerSpec, { kind: 'sgd' }>;

export interface DenseBatch {
  /** Row-major [b, inputSize] images. */
  x: Float32Array;
  /** Row-major [b, classes] one-hot labels. */
  y: Float32Array;
  b: number;
}

export interface NativeDenseStep {
  /**
   * One SGD step: reads params, slots and masks (not disposed), returns new parameters and slots (every name of
   * `params` and `slots`) and the loss, as tfjs tensors.
   */
  step(
    params: Tensors,
    slots: Tensors,
    keep: Tensors,
    batch: DenseBatch,
  ): { params: Tensors; slots: Tensors; loss: tf.Scalar };
  dispose(): void;
}

function nativeBackend(): NativeBackend | null {
  if (tf.getBackend() !== 'tensorflow') return null;
  const b = tf.backend() as unknown as Partial<NativeBackend>;
  return b.binding && typeof b.getInputTensorIds === 'function' && typeof b.createOutputTensor === 'function'
    ? (b as NativeBackend)
    : null;
}

/** The step for this model and optimizer on the current backend, or null where the tape must run it. */
export function nativeDenseStep(
  model: ModelDef,
  optimizer: OptimizerSpec,
  env: NodeJS.ProcessEnv = process.env,
): NativeDenseStep | null {
  if (env.LTH_NATIVE_DENSE === 'off' || !model.dense || optimizer.kind !== 'sgd') return null;
  const backend = nativeBackend();
  // The tape's ReLU gradient and cross-entropy are these kernels only when ml/native-kernels.ts registered them.
  if (
    !backend ||
    !tf.getKernel(NATIVE_RELU_GRAD, 'tensorflow') ||
    !tf.getKernel(NATIVE_SOFTMAX_XENT, 'tensorflow')
  )
    return null;
  return makeStep(backend, model.dense, optimizer);
}

function makeStep(
  backend: NativeBackend,
  layers: NonNullable<ModelDef['dense']>,
  spec: SgdSpec,
): NativeDenseStep {
  const bind = backend.binding;
  const T = { name: 'T', type: bind.TF_ATTR_TYPE, value: bind.TF_FLOAT };
  const Tidx = { name: 'Tidx', type: bind.TF_ATTR_TYPE, value: bind.TF_INT32 };
  const noKeepDims = { name: 'keep_dims', type: bind.TF_ATTR_BOOL, value: false };
  const matMulAttrs = (adjX: boolean, adjY: boolean) => [
    T,
    { name: 'adj_x', type: bind.TF_ATTR_BOOL, value: adjX },
    { name: 'adj_y', type: bind.TF_ATTR_BOOL, value: adjY },
  ];
  const plain = matMulAttrs(false, false);
  const gradA = matMulAttrs(false, true);
  const gradB = matMulAttrs(true, false);
  const scalar = (v: number) => bind.createTensor([], bind.TF_FLOAT, new Float32Array([v]));
  // What tf.scalar(...) uploads in the tape step: the same float32 values.
  const lr = scalar(spec.lr);
  const mom = scalar(spec.momentum);
  const wd = (spec.weightDecay ?? 0) > 0 ? scalar(spec.weightDecay ?? 0) : null;
  const zero = scalar(0);
  const one = scalar(1);
  const axis0 = bind.createTensor([1], bind.TF_INT32, new Int32Array([0]));
  // 1/b as the tape computes it, dy / b in float32 on the device, once per batch size.
  const invBatch = new Map<number, number>();
  const constants = [lr, mom, zero, one, axis0, ...(wd !== null ? [wd] : [])];

  return {
    step(params, slots, keep, batch) {
      const temps: number[] = [];
      const t = (id: number) => (temps.push(id), id);
      const run = (name: string, ids: number[], attrs: unknown[] = [T]) =>
        t((bind.executeOp(name, attrs, ids, 1)[0] as TensorMetadata).id);
      const idOf = (x: tf.Tensor) => backend.getInputTensorIds([x])[0] as number;
      const kept: number[] = [];
      const keepOut = (id: number) => {
        temps.splice(temps.lastIndexOf(id), 1);
        kept.push(id);
        return id;
      };
      try {
        let inv = invBatch.get(batch.b);
        if (inv === undefined) {
          const b = scalar(batch.b);
          inv = (bind.executeOp('RealDiv', [T], [one, b], 1)[0] as TensorMetadata).id;
          bind.deleteTensor(b);
          invBatch.set(batch.b, inv);
        }
        const x = t(bind.createTensor([batch.b, layers.inputSize], bind.TF_FLOAT, batch.x));
        const y = t(bind.createTensor([batch.b, batch.y.length / batch.b], bind.TF_FLOAT, batch.y));
        // Forward: h_{i+1} = relu(h_i W_i + b_i); the last layer's output are the logits.
        const inputs = [x];
        const pre: number[] = [];
        for (const [i, l] of layers.layers.entries()) {
          const w = idOf(params[l.weight] as tf.Tensor);
          const bias = idOf(params[l.bias] as tf.Tensor);
          const z = run('AddV2', [run('BatchMatMulV2', [inputs[i] as number, w], plain), bias]);
          pre.push(z);
          inputs.push(l.relu ? run('Relu', [z]) : z);
        }
        const logits = inputs[layers.layers.length] as number;
        const [rows, backprop] = bind.executeOp('SoftmaxCrossEntropyWithLogits', [T], [logits, y], 2) as [
          TensorMetadata,
          TensorMetadata,
        ];
        t(rows.id);
        t(backprop.id);
        const loss = keepOut(run('Mean', [rows.id, axis0], [T, Tidx, noKeepDims]));
        // Backward, last layer first: d is the gradient at the layer's output (before its ReLU's gradient).
        const grads = new Map<string, number>();
        let d = run('Mul', [backprop.id, inv]);
        for (let i = layers.layers.length - 1; i >= 0; i--) {
          const l = layers.layers[i] as NonNullable<ModelDef['dense']>['layers'][number];
          if (l.relu) d = run(NATIVE_RELU_GRAD_OP, [d, pre[i] as number]);
          grads.set(l.weight, run('BatchMatMulV2', [inputs[i] as number, d], gradB));
          grads.set(l.bias, run('Sum', [d, axis0], [T, Tidx, noKeepDims]));
          if (i > 0) d = run('BatchMatMulV2', [d, idOf(params[l.weight] as tf.Tensor)], gradA);
        }
        // The update, op for op as optimizers.ts' applyUpdate (SGD), then the mask as Trainer.applyMask.
        const newParams: Record<string, number> = {};
        const newSlots: Record<string, number> = {};
        for (const name of Object.keys(params)) {
          const w = idOf(params[name] as tf.Tensor);
          const k = keep[name] ? idOf(keep[name] as tf.Tensor) : null;
          let g = grads.get(name);
          if (g === undefined) throw new Error(`internal: the dense step has no gradient for '${name}'`);
          if (k !== null) g = run('Mul', [g, k]);
          if (wd !== null) g = run('AddV2', [g, run('Mul', [wd, w])]);
          if (spec.momentum > 0) {
            const key = `momentum/${name}`;
            const buf = run('AddV2', [run('Mul', [mom, idOf(slots[key] as tf.Tensor)]), g]);
            newSlots[key] = keepOut(buf);
            g = spec.nesterov ? run('AddV2', [g, run('Mul', [mom, buf])]) : buf;
          }
          const updated = run('Sub', [w, run('Mul', [lr, g])]);
          newParams[name] = keepOut(k !== null ? run('AddV2', [run('Mul', [updated, k]), zero]) : updated);
        }
        // tfjs-node's createOutputTensor registers the handle and returns a tracked tfjs tensor.
        const wrap = (id: number, shape: number[]) =>
          backend.createOutputTensor({ id, shape, dtype: bind.TF_FLOAT }) as unknown as tf.Tensor;
        const out = {
          params: Object.fromEntries(
            Object.entries(newParams).map(([n, id]) => [n, wrap(id, (params[n] as tf.Tensor).shape)]),
          ),
          slots: Object.fromEntries(
            Object.entries(newSlots).map(([n, id]) => [n, wrap(id, (slots[n] as tf.Tensor).shape)]),
          ),
          loss: wrap(loss, []) as tf.Scalar,
        };
        kept.length = 0;
        return out;
      } finally {
        for (const id of temps) bind.deleteTensor(id);
        // Handed over only on success: a step that threw leaves nothing behind.
        for (const id of kept) bind.deleteTensor(id);
      }
    },
    dispose() {
      for (const id of [...constants, ...invBatch.values()]) bind.deleteTensor(id);
      invBatch.clear();
    },
  };
}

/** TensorFlow's own name for what NATIVE_RELU_GRAD runs. */
const NATIVE_RELU_GRAD_OP = 'ReluGrad';
