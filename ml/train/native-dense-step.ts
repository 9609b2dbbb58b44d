/**
 * The training step of a fully connected ReLU net (LeNet-300-100) with SGD, run as TensorFlow ops straight on the
 * native binding: no tfjs engine, tape, scopes or Identity copies around each kernel. LeNet's step is ~40 small
 * kernels whose arithmetic is a few milliseconds, and tfjs spends ~20 µs of JavaScript on each op (bench/profile.ts),
 * as much again as the kernels; here an op costs one binding call. The parameters and momentum live in TensorFlow
 * resource variables that the update rewrites in place with TensorFlow's fused optimizer kernels (one pass over a
 * weight matrix where the tape's update makes seven, each into a new buffer).
 *
 * Guarantees:
 * - bit-identical to Trainer's tape step on the same backend: the same TensorFlow kernels in the same order with the
 *   same operands (BatchMatMulV2 with the same adjoint flags, AddV2 bias, Relu, SoftmaxCrossEntropyWithLogits, Sum
 *   over the batch for the bias gradient, ReluGrad of the pre-activation, the gradient masked by Mul), and an update
 *   that evaluates optimizers.ts' float32 expressions: ResourceApplyMomentum (accum·m + g, then var − accum·lr),
 *   ResourceApplyGradientDescent (var − g·lr), Nesterov op for op. The tape's re-mask (w·k + 0) is made only where
 *   it can change a bit (slotsZeroWherePruned). So a run, its checkpoints and a resumed run store the same bytes
 *   whichever step ran (test/ml-native-dense-step.test.ts);
 * - used only where that holds: the `tensorflow` backend with the native kernels of ml/native-kernels.ts, a model
 *   that declares its dense layers (ModelDef.dense), the plain cross-entropy objective and SGD; everything else keeps
 *   the tape. LTH_NATIVE_DENSE=off turns it off (to measure it);
 * - the state is the step's own: load() copies values in, read() hands out views the caller disposes; every
 *   intermediate handle is deleted before step() returns, also when an op throws, and dispose() frees the variables.
 */
import * as tf from '@tensorflow/tfjs-core';

import { currentBackend } from '../backend.js';
import { NATIVE_RELU_GRAD, NATIVE_SOFTMAX_XENT } from '../native-kernels.js';
import type { ModelDef } from '../models/types.js';
import type { NamedTensors } from '../tensors.js';
import { momentumSlot, slotParam, slotSpecs } from './optimizers.js';
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
  TF_ATTR_SHAPE: number;
  TF_ATTR_STRING: number;
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
  /** Takes these values as the training state (copied: the caller keeps, and disposes, its tensors). */
  load(params: Tensors, slots: Tensors): void;
  /**
   * The current parameters and slots as new tfjs tensors, which the caller disposes. They share memory with the
   * state until the next step writes it; a view still alive then costs that step a copy, so drop views first.
   */
  read(): { params: Tensors; slots: Tensors };
  /** One SGD step on the loaded state with these masks (not disposed); returns the loss, which the caller owns. */
  step(keep: Tensors, batch: DenseBatch): tf.Scalar;
  dispose(): void;
}

export interface NativeDenseOptions {
  /**
   * Update with TensorFlow's fused optimizer kernels (default: on the CPU build only). Their CPU kernels evaluate
   * the tape's float32 expressions exactly; a GPU compiler may contract accum·m + g into one rounding (FMA), so the
   * GPU build updates op for op, as the tape does.
   */
  fused?: boolean;
  /**
   * Re-apply the masks to the weights after each update, as the tape does. Needed only when a pruned coordinate's
   * optimizer slot may be non-zero at load (see slotsZeroWherePruned); otherwise it provably changes no bit.
   */
  remask: boolean;
}

/**
 * Whether every optimizer slot of a masked parameter is ±0 where its mask is 0. Then the masked update leaves
 * pruned weights at +0 by itself (+0 − lr·(±0) = +0, and momentum·(±0) + (±0) = ±0 keeps the slot there), and a
 * kept weight never becomes −0 (x − y is −0 only for x = −0, which the initial mask removed): the tape's re-mask
 * (w·k + 0) is the identity and may be skipped. Finite arithmetic assumed: a
 * diverged run (an infinite gradient) has NaN at pruned coordinates either way.
 */
export function slotsZeroWherePruned(slots: NamedTensors, masks: NamedTensors): boolean {
  for (const [name, slot] of Object.entries(slots)) {
    const mask = masks[slotParam(name)];
    if (!mask) continue;
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i] === 0 && slot.data[i] !== 0) return false;
  }
  return true;
}

function isCpuBuild(): boolean {
  try {
    return currentBackend().name === 'tensorflow';
  } catch {
    return false;
  }
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
  options: NativeDenseOptions = { remask: true },
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
  return makeStep(backend, model, model.dense, optimizer, options);
}

/**
 * TensorFlow's anonymous resource name: a variable created under it belongs to its handle and is freed with it
 * (what eager TensorFlow's own variables use).
 */
const ANONYMOUS_RESOURCE = 'cd2c89b7-88b7-44c8-ad83-06c2a9158347';

function makeStep(
  backend: NativeBackend,
  model: ModelDef,
  layers: NonNullable<ModelDef['dense']>,
  spec: SgdSpec,
  options: NativeDenseOptions,
): NativeDenseStep {
  const bind = backend.binding;
  const fused = options.fused ?? isCpuBuild();
  const T = { name: 'T', type: bind.TF_ATTR_TYPE, value: bind.TF_FLOAT };
  const Tidx = { name: 'Tidx', type: bind.TF_ATTR_TYPE, value: bind.TF_INT32 };
  const dtype = [{ name: 'dtype', type: bind.TF_ATTR_TYPE, value: bind.TF_FLOAT }];
  const noKeepDims = { name: 'keep_dims', type: bind.TF_ATTR_BOOL, value: false };
  const matMulAttrs = (adjX: boolean, adjY: boolean) => [
    T,
    { name: 'adj_x', type: bind.TF_ATTR_BOOL, value: adjX },
    { name: 'adj_y', type: bind.TF_ATTR_BOOL, value: adjY },
  ];
  const plain = matMulAttrs(false, false);
  const gradA = matMulAttrs(false, true);
  const gradB = matMulAttrs(true, false);
  const applyAttrs = [
    T,
    { name: 'use_locking', type: bind.TF_ATTR_BOOL, value: false },
    { name: 'use_nesterov', type: bind.TF_ATTR_BOOL, value: false },
  ];
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

  // The state: one resource variable per parameter and per optimizer slot, updated in place.
  const paramNames = model.params.map((p) => p.name);
  const slotList = slotSpecs(spec, model.params);
  const slotNames = slotList.map((s) => s.name);
  const variables = new Map<string, { id: number; shape: number[] }>();
  for (const { name, shape } of [...model.params, ...slotList]) {
    const attrs = [
      ...dtype,
      { name: 'shape', type: bind.TF_ATTR_SHAPE, value: [...shape] },
      { name: 'container', type: bind.TF_ATTR_STRING, value: '' },
      { name: 'shared_name', type: bind.TF_ATTR_STRING, value: ANONYMOUS_RESOURCE },
    ];
    const id = (bind.executeOp('VarHandleOp', attrs, [], 1)[0] as TensorMetadata).id;
    variables.set(name, { id, shape: [...shape] });
  }
  const variable = (name: string): number => {
    const v = variables.get(name);
    if (v === undefined) throw new Error(`internal: the dense step has no variable '${name}'`);
    return v.id;
  };
  const assign = (name: string, value: number) =>
    bind.executeOp('AssignVariableOp', dtype, [variable(name), value], 0);
  const readVar = (name: string) =>
    (bind.executeOp('ReadVariableOp', dtype, [variable(name)], 1)[0] as TensorMetadata).id;
  const idOf = (x: tf.Tensor) => backend.getInputTensorIds([x])[0] as number;

  return {
    load(params, slots) {
      for (const [names, from] of [
        [paramNames, params],
        [slotNames, slots],
      ] as const)
        for (const name of names) {
          const value = from[name];
          if (!value) throw new Error(`internal: the dense step got no '${name}'`);
          assign(name, idOf(value));
        }
    },

    read() {
      // createOutputTensor registers the handle with tfjs-node's backend: a tracked tfjs tensor the caller owns.
      const view = (name: string) =>
        backend.createOutputTensor({
          id: readVar(name),
          shape: variables.get(name)?.shape ?? [],
          dtype: bind.TF_FLOAT,
        }) as unknown as tf.Tensor;
      return {
        params: Object.fromEntries(paramNames.map((n) => [n, view(n)])),
        slots: Object.fromEntries(slotNames.map((n) => [n, view(n)])),
      };
    },

    step(keep, batch) {
      const temps: number[] = [];
      const t = (id: number) => (temps.push(id), id);
      const run = (name: string, ids: number[], attrs: unknown[] = [T]) =>
        t((bind.executeOp(name, attrs, ids, 1)[0] as TensorMetadata).id);
      const drop = (id: number) => {
        temps.splice(temps.lastIndexOf(id), 1);
        bind.deleteTensor(id);
      };
      let loss: number | null = null;
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
        // Views of the weights for the forward and backward passes; dropped before the update writes in place.
        const w = new Map<string, number>();
        for (const l of layers.layers) w.set(l.weight, t(readVar(l.weight)));
        // Forward: h_{i+1} = relu(h_i W_i + b_i); the last layer's output are the logits.
        const inputs = [x];
        const pre: number[] = [];
        for (const [i, l] of layers.layers.entries()) {
          const bias = t(readVar(l.bias));
          const z = run('AddV2', [
            run('BatchMatMulV2', [inputs[i] as number, w.get(l.weight) as number], plain),
            bias,
          ]);
          drop(bias);
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
        loss = (bind.executeOp('Mean', [T, Tidx, noKeepDims], [rows.id, axis0], 1)[0] as TensorMetadata).id;
        // Backward, last layer first: d is the gradient at the layer's output (before its ReLU's gradient).
        const grads = new Map<string, number>();
        let d = run('Mul', [backprop.id, inv]);
        for (let i = layers.layers.length - 1; i >= 0; i--) {
          const l = layers.layers[i] as NonNullable<ModelDef['dense']>['layers'][number];
          if (l.relu) d = run(NATIVE_RELU_GRAD_OP, [d, pre[i] as number]);
          grads.set(l.weight, run('BatchMatMulV2', [inputs[i] as number, d], gradB));
          grads.set(l.bias, run('Sum', [d, axis0], [T, Tidx, noKeepDims]));
          if (i > 0) d = run('BatchMatMulV2', [d, w.get(l.weight) as number], gradA);
        }
        for (const id of w.values()) drop(id);
        // The update as optimizers.ts' applyUpdate (SGD) computes it, in place: TensorFlow's fused momentum and
        // gradient-descent kernels evaluate the same float32 expressions (accum·m + g, then var − accum·lr).
        for (const name of paramNames) {
          const k = keep[name] ? idOf(keep[name] as tf.Tensor) : null;
          let g = grads.get(name);
          if (g === undefined) throw new Error(`internal: the dense step has no gradient for '${name}'`);
          if (k !== null) g = run('Mul', [g, k]);
          if (wd !== null) {
            const v = t(readVar(name));
            g = run('AddV2', [g, run('Mul', [wd, v])]);
            drop(v);
          }
          if (fused && spec.momentum > 0 && !spec.nesterov) {
            bind.executeOp(
              'ResourceApplyMomentum',
              applyAttrs,
              [variable(name), variable(momentumSlot(name)), lr, g, mom],
              0,
            );
          } else if (fused && spec.momentum === 0) {
            bind.executeOp('ResourceApplyGradientDescent', [T, applyAttrs[1]], [variable(name), lr, g], 0);
          } else {
            // Op for op as optimizers.ts (Nesterov: TensorFlow's kernel groups g·lr + accum·m·lr differently).
            let delta = g;
            if (spec.momentum > 0) {
              const buf = run('AddV2', [run('Mul', [mom, t(readVar(momentumSlot(name)))]), g]);
              assign(momentumSlot(name), buf);
              delta = spec.nesterov ? run('AddV2', [g, run('Mul', [mom, buf])]) : buf;
            }
            const v = t(readVar(name));
            const updated = run('Sub', [v, run('Mul', [lr, delta])]);
            drop(v);
            assign(name, updated);
          }
          if (k !== null && options.remask) {
            const v = t(readVar(name));
            const masked = run('AddV2', [run('Mul', [v, k]), zero]);
            drop(v);
            assign(name, masked);
          }
        }
        const out = backend.createOutputTensor({
          id: loss,
          shape: [],
          dtype: bind.TF_FLOAT,
        }) as unknown as tf.Scalar;
        loss = null;
        return out;
      } finally {
        for (const id of temps) bind.deleteTensor(id);
        // Handed over only on success: a step that threw leaves nothing behind.
        if (loss !== null) bind.deleteTensor(loss);
      }
    },

    dispose() {
      for (const id of [...constants, ...invBatch.values(), ...[...variables.values()].map((v) => v.id)])
        bind.deleteTensor(id);
      invBatch.clear();
      variables.clear();
    },
  };
}

/** TensorFlow's own name for what NATIVE_RELU_GRAD runs. */
const NATIVE_RELU_GRAD_OP = 'ReluGrad';
