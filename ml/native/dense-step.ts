/**
 * The training step of a fully connected ReLU net (LeNet-300-100) with SGD, run by native TensorFlow as one graph:
 * no tfjs engine, tape, scopes or Identity copies around each kernel, and no JavaScript between kernels. LeNet's
 * step is ~40 small kernels whose arithmetic is a few milliseconds; tfjs spends ~20 µs of JavaScript on each op
 * (bench/profile.ts), as much again as the kernels, and even one binding call per op left a sixth of the step
 * outside them. Here the step is one session call (ml/native/graph.ts), and TensorFlow's executor runs independent
 * kernels (a layer's weight and input gradients, the updates) side by side when it has more than one thread. The
 * parameters and momentum live in the session's resource variables, which the update rewrites in place with
 * TensorFlow's fused optimizer kernels (one pass over a weight matrix where the tape's update makes seven).
 *
 * Guarantees:
 * - bit-identical to Trainer's tape step on the same backend: the same TensorFlow kernels with the same operands
 *   (BatchMatMulV2 with the same adjoint flags, AddV2 bias, Relu, SoftmaxCrossEntropyWithLogits, Sum over the batch
 *   for the bias gradient, ReluGrad of the pre-activation, the gradient masked by Mul), and an update that evaluates
 *   optimizers.ts' float32 expressions: ResourceApplyMomentum (accum·m + g, then var − accum·lr),
 *   ResourceApplyGradientDescent (var − g·lr), Nesterov op for op. The tape's re-mask (w·k + 0) is made only where
 *   it can change a bit (slotsZeroWherePruned). So a run, its checkpoints and a resumed run store the same bytes
 *   whichever step ran (test/ml-native-dense-step.test.ts);
 * - used only where that holds: the `tensorflow` backend with the native kernels of ml/native/kernels.ts, a model
 *   that declares its dense layers (ModelDef.dense), the plain cross-entropy objective and SGD; everything else keeps
 *   the tape. LTH_NATIVE_STEP=off turns it off (to measure it);
 * - the state is the step's own: load() copies values in, read() hands out views the caller disposes; step() frees
 *   its feeds, also when the session fails, and dispose() closes the session with its variables.
 */
import * as tf from '@tensorflow/tfjs-core';

import { currentBackend } from '../backend.js';
import {
  after,
  DT,
  GraphBuilder,
  loadGraph,
  nativeBackend,
  output,
  type NativeBackend,
  type NativeTensorInfo,
} from './graph.js';
import { NATIVE_RELU_GRAD, NATIVE_SOFTMAX_XENT } from './kernels.js';
import type { ModelDef } from '../models/types.js';
import type { NamedTensors } from '../tensors.js';
import { momentumSlot, slotParam, slotSpecs } from '../train/optimizers.js';
import type { OptimizerSpec } from '../train/types.js';

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
  /** The parameters step() gets a mask for (the graph multiplies their gradients by it); default none. */
  masked?: readonly string[];
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

/** The step for this model and optimizer on the current backend, or null where the tape must run it. */
export function nativeDenseStep(
  model: ModelDef,
  optimizer: OptimizerSpec,
  options: NativeDenseOptions = { remask: true },
  env: NodeJS.ProcessEnv = process.env,
): NativeDenseStep | null {
  if (env.LTH_NATIVE_STEP === 'off' || !model.dense || optimizer.kind !== 'sgd') return null;
  const backend = nativeBackend();
  // The tape's ReLU gradient and cross-entropy are these kernels only when ml/native/kernels.ts registered them.
  if (
    !backend ||
    !tf.getKernel(NATIVE_RELU_GRAD, 'tensorflow') ||
    !tf.getKernel(NATIVE_SOFTMAX_XENT, 'tensorflow')
  )
    return null;
  return makeStep(backend, model, model.dense, optimizer, options);
}

function makeStep(
  backend: NativeBackend,
  model: ModelDef,
  layers: NonNullable<ModelDef['dense']>,
  spec: SgdSpec,
  options: NativeDenseOptions,
): NativeDenseStep {
  const bind = backend.binding;
  const fused = options.fused ?? isCpuBuild();
  const masked = new Set(options.masked ?? []);
  const g = new GraphBuilder();
  const T = { T: { type: DT.float } };
  const dtype = { dtype: { type: DT.float } };
  const reduce = { ...T, Tidx: { type: DT.int32 }, keep_dims: { b: false } };
  const matMul = (name: string, a: string, b: string, adjX: boolean, adjY: boolean) =>
    g.node(name, 'BatchMatMulV2', [a, b], { ...T, adj_x: { b: adjX }, adj_y: { b: adjY } });
  const op = (name: string, kind: string, inputs: string[]) => g.node(name, kind, inputs, T);
  const placeholder = (name: string) => g.node(name, 'Placeholder', [], dtype);

  // What tf.scalar(...) uploads in the tape step: the same float32 values.
  const lr = g.scalar('lr', spec.lr);
  const mom = g.scalar('momentum', spec.momentum);
  const wd = (spec.weightDecay ?? 0) > 0 ? g.scalar('weight_decay', spec.weightDecay ?? 0) : null;
  const zero = g.scalar('zero', 0);
  const one = g.scalar('one', 1);
  const axis0 = g.node('axis0', 'Const', [], {
    dtype: { type: DT.int32 },
    value: { tensor: { dtype: DT.int32, shape: [1], values: [0] } },
  });

  // The state: one resource variable per parameter and per optimizer slot, updated in place; load() assigns them
  // all from placeholders, read() fetches a read of each.
  const paramNames = model.params.map((p) => p.name);
  const slotList = slotSpecs(spec, model.params);
  const slotNames = slotList.map((s) => s.name);
  const handle = new Map<string, string>();
  const loadInput = new Map<string, string>();
  const readOut = new Map<string, string>();
  const loads: string[] = [];
  for (const { name, shape } of [...model.params, ...slotList]) {
    const key = nodeKey(name);
    const h = g.node(`${key}/var`, 'VarHandleOp', [], {
      ...dtype,
      shape: { shape },
      container: { s: '' },
      shared_name: { s: key },
    });
    handle.set(name, h);
    loadInput.set(name, placeholder(`${key}/load_value`));
    loads.push(g.node(`${key}/load`, 'AssignVariableOp', [h, `${key}/load_value`], dtype));
    readOut.set(name, g.node(`${key}/read`, 'ReadVariableOp', [h], dtype));
  }
  const loaded = g.node('loaded', 'NoOp', loads.map(after));
  const loadedOut = g.node('loaded_out', 'Identity', [zero, after(loaded)], T);
  const varOf = (name: string): string => {
    const h = handle.get(name);
    if (h === undefined) throw new Error(`internal: the dense step has no variable '${name}'`);
    return h;
  };
  const readIn = (name: string, as: string, deps: string[] = []) =>
    g.node(as, 'ReadVariableOp', [varOf(name), ...deps.map(after)], dtype);

  // The step, as the tape runs it. Feeds: the batch, its size, and the masks.
  const x = placeholder('x');
  const y = placeholder('y');
  const batchSize = placeholder('batch_size');
  const keepInput = new Map<string, string>();
  for (const name of masked) keepInput.set(name, placeholder(`${nodeKey(name)}/keep`));
  // 1/b as the tape computes it: dy / b in float32 on the device.
  const inv = op('inv_batch', 'RealDiv', [one, batchSize]);
  // Forward: h_{i+1} = relu(h_i W_i + b_i); the last layer's output are the logits.
  const inputs = [x];
  const pre: string[] = [];
  const weightRead = new Map<string, string>();
  for (const [i, l] of layers.layers.entries()) {
    const w = readIn(l.weight, `forward/${i}/w`);
    weightRead.set(l.weight, w);
    const b = readIn(l.bias, `forward/${i}/b`);
    const z = op(`forward/${i}/z`, 'AddV2', [
      matMul(`forward/${i}/matmul`, inputs[i] as string, w, false, false),
      b,
    ]);
    pre.push(z);
    inputs.push(l.relu ? op(`forward/${i}/relu`, 'Relu', [z]) : z);
  }
  const xent = op('xent', 'SoftmaxCrossEntropyWithLogits', [inputs[layers.layers.length] as string, y]);
  const mean = g.node('mean_loss', 'Mean', [output(xent, 0), axis0], reduce);
  // Backward, last layer first: d is the gradient at the layer's output (before its ReLU's gradient).
  const grads = new Map<string, string>();
  const backward: string[] = [];
  let d = op('backward/dlogits', 'Mul', [output(xent, 1), inv]);
  for (let i = layers.layers.length - 1; i >= 0; i--) {
    const l = layers.layers[i] as NonNullable<ModelDef['dense']>['layers'][number];
    if (l.relu) d = op(`backward/${i}/relu_grad`, NATIVE_RELU_GRAD_OP, [d, pre[i] as string]);
    grads.set(l.weight, matMul(`backward/${i}/dw`, inputs[i] as string, d, true, false));
    grads.set(l.bias, g.node(`backward/${i}/db`, 'Sum', [d, axis0], reduce));
    if (i > 0) {
      d = matMul(`backward/${i}/dx`, d, weightRead.get(l.weight) as string, false, true);
      backward.push(d);
    }
  }
  // Every read of the weights is consumed before the first update writes them in place (a live read would make
  // TensorFlow copy the buffer it updates).
  const gradientsDone = g.node('gradients_done', 'NoOp', [...grads.values(), ...backward].map(after));
  // The update as optimizers.ts' applyUpdate (SGD) computes it, in place: TensorFlow's fused momentum and
  // gradient-descent kernels evaluate the same float32 expressions (accum·m + g, then var − accum·lr).
  const updates: string[] = [];
  for (const name of paramNames) {
    const key = nodeKey(name);
    const k = keepInput.get(name);
    let grad = grads.get(name);
    if (grad === undefined) throw new Error(`internal: the dense step has no gradient for '${name}'`);
    if (k !== undefined) grad = op(`update/${key}/masked_grad`, 'Mul', [grad, k]);
    if (wd !== null) {
      const v = readIn(name, `update/${key}/decay_read`);
      grad = op(`update/${key}/decayed_grad`, 'AddV2', [grad, op(`update/${key}/decay`, 'Mul', [wd, v])]);
    }
    let done: string;
    if (fused && spec.momentum > 0 && !spec.nesterov) {
      done = g.node(
        `update/${key}/apply`,
        'ResourceApplyMomentum',
        [varOf(name), varOf(momentumSlot(name)), lr, grad, mom, after(gradientsDone)],
        { ...T, use_locking: { b: false }, use_nesterov: { b: false } },
      );
    } else if (fused && spec.momentum === 0) {
      done = g.node(
        `update/${key}/apply`,
        'ResourceApplyGradientDescent',
        [varOf(name), lr, grad, after(gradientsDone)],
        { ...T, use_locking: { b: false } },
      );
    } else {
      // Op for op as optimizers.ts (Nesterov: TensorFlow's kernel groups g·lr + accum·m·lr differently).
      let delta = grad;
      let slotDone: string | null = null;
      if (spec.momentum > 0) {
        const slot = momentumSlot(name);
        const prev = readIn(slot, `update/${key}/momentum_read`, [gradientsDone]);
        const buf = op(`update/${key}/momentum`, 'AddV2', [
          op(`update/${key}/decayed_momentum`, 'Mul', [mom, prev]),
          grad,
        ]);
        slotDone = g.node(`update/${key}/momentum_assign`, 'AssignVariableOp', [varOf(slot), buf], dtype);
        delta = spec.nesterov
          ? op(`update/${key}/nesterov`, 'AddV2', [
              grad,
              op(`update/${key}/nesterov_term`, 'Mul', [mom, buf]),
            ])
          : buf;
      }
      const v = readIn(name, `update/${key}/read`, [gradientsDone]);
      const updated = op(`update/${key}/sub`, 'Sub', [v, op(`update/${key}/step`, 'Mul', [lr, delta])]);
      done = g.node(
        `update/${key}/assign`,
        'AssignVariableOp',
        [varOf(name), updated, ...(slotDone ? [after(slotDone)] : [])],
        dtype,
      );
    }
    if (k !== undefined && options.remask) {
      const v = readIn(name, `update/${key}/remask_read`, [done]);
      const again = op(`update/${key}/remasked`, 'AddV2', [op(`update/${key}/remask`, 'Mul', [v, k]), zero]);
      done = g.node(`update/${key}/remask_assign`, 'AssignVariableOp', [varOf(name), again], dtype);
    }
    updates.push(done);
  }
  const loss = g.node('loss', 'Identity', [mean, ...updates.map(after)], T);

  const session = loadGraph(bind, g);
  const idOf = (t: tf.Tensor) => backend.getInputTensorIds([t])[0] as number;
  // The batch size as a float32 scalar, uploaded once per size.
  const sizes = new Map<number, number>();

  return {
    load(params, slots) {
      const feeds = new Map<string, number>();
      for (const [names, from] of [
        [paramNames, params],
        [slotNames, slots],
      ] as const)
        for (const name of names) {
          const value = from[name];
          if (!value) throw new Error(`internal: the dense step got no '${name}'`);
          feeds.set(loadInput.get(name) as string, idOf(value));
        }
      for (const t of session.run(feeds, [loadedOut])) bind.deleteTensor(t.id);
    },

    read() {
      const names = [...paramNames, ...slotNames];
      const out = session.run(
        new Map(),
        names.map((n) => readOut.get(n) as string),
      );
      // createOutputTensor registers the handle with tfjs-node's backend: a tracked tfjs tensor the caller owns.
      const views = out.map((m) => backend.createOutputTensor(m) as unknown as tf.Tensor);
      const pick = (from: number, list: string[]) =>
        Object.fromEntries(list.map((n, i) => [n, views[from + i] as tf.Tensor]));
      return { params: pick(0, paramNames), slots: pick(paramNames.length, slotNames) };
    },

    step(keep, batch) {
      const given = Object.keys(keep);
      if (given.length !== masked.size || given.some((n) => !masked.has(n)))
        throw new Error(`internal: the dense step was built for masks [${[...masked]}], got [${given}]`);
      let size = sizes.get(batch.b);
      if (size === undefined) {
        size = bind.createTensor([], bind.TF_FLOAT, new Float32Array([batch.b]));
        sizes.set(batch.b, size);
      }
      const xs = bind.createTensor([batch.b, layers.inputSize], bind.TF_FLOAT, batch.x);
      const ys = bind.createTensor([batch.b, batch.y.length / batch.b], bind.TF_FLOAT, batch.y);
      try {
        const feeds = new Map<string, number>([
          [x, xs],
          [y, ys],
          [batchSize, size],
        ]);
        for (const [name, k] of keepInput) feeds.set(k, idOf(keep[name] as tf.Tensor));
        const [out] = session.run(feeds, [loss]);
        return backend.createOutputTensor(out as NativeTensorInfo) as unknown as tf.Scalar;
      } finally {
        bind.deleteTensor(xs);
        bind.deleteTensor(ys);
      }
    },

    dispose() {
      for (const id of sizes.values()) bind.deleteTensor(id);
      sizes.clear();
      session.dispose();
    },
  };
}

/** A parameter's or slot's name as a graph node prefix (TensorFlow's node names allow letters, digits and _ . / -). */
function nodeKey(name: string): string {
  return name.replace(/[^A-Za-z0-9_./-]/g, '_');
}

/** TensorFlow's own name for what NATIVE_RELU_GRAD runs. */
const NATIVE_RELU_GRAD_OP = 'ReluGrad';
