/**
 * SGD (with momentum / Nesterov), Adam and AdamW, following torch.optim's update rules step for step, with their state
 * held as named tensors so that a checkpoint can carry it and a resumed run continues bit-identically.
 *
 * The update is a pure function (params, grads, slots, step) -> (params, slots); no hidden counters. Adam's
 * bias-correction step count is the global step, which the checkpoint already holds.
 */
import * as tf from '@tensorflow/tfjs-core';
import { MlInputError } from '../errors.js';
import type { ParamSpec } from '../models/types.js';
import type { OptimizerSpec } from './types.js';

type Tensors = Record<string, tf.Tensor>;

export interface SlotSpec {
  name: string;
  shape: number[];
}

/** The SGD momentum slot of a parameter. */
export const momentumSlot = (param: string): string => `momentum/${param}`;

/** The parameter a slot belongs to (slots are named `<kind>/<param>`). */
export const slotParam = (slot: string): string => slot.slice(slot.indexOf('/') + 1);

/** Names and shapes of the optimizer's state tensors for these parameters. */
export function slotSpecs(spec: OptimizerSpec, params: readonly ParamSpec[]): SlotSpec[] {
  const out: SlotSpec[] = [];
  for (const p of params) {
    if (spec.kind === 'sgd') {
      // torch keeps no buffer when momentum is 0; neither do we.
      if (spec.momentum > 0) out.push({ name: momentumSlot(p.name), shape: [...p.shape] });
    } else {
      out.push({ name: `m/${p.name}`, shape: [...p.shape] });
      out.push({ name: `v/${p.name}`, shape: [...p.shape] });
    }
  }
  return out;
}

function slot(slots: Tensors, name: string): tf.Tensor {
  const s = slots[name];
  if (!s) throw new MlInputError(`optimizer state lacks slot '${name}'`);
  return s;
}

/**
 * The values of an update that depend on the step (1-based): Adam's bias-corrected step size and √(1 − β₂ᵗ), and
 * under a schedule the learning rate lr·λ (`lrFactor`: λ of this step; null for a constant rate), as scalars made
 * once per step. A step replayed as a graph takes them as inputs (a constant would freeze them at the traced
 * step); SGD at a constant rate has none. Call inside the step's tidy.
 */
export function stepScalars(spec: OptimizerSpec, step: number, lrFactor: number | null = null): Tensors {
  // Computed in double precision, as torch does on the host (its scheduler sets the group's lr to base·λ).
  const lr = lrFactor === null ? spec.lr : spec.lr * lrFactor;
  if (spec.kind === 'sgd') return lrFactor === null ? {} : { 'sgd/lr': tf.scalar(lr) };
  const bc1 = 1 - Math.pow(spec.beta1, step);
  return {
    ...(spec.kind === 'adamw' ? { 'adamw/decay': tf.scalar(1 - lr * spec.weightDecay) } : {}),
    'adam/stepSize': tf.scalar(lr / bc1),
    'adam/bc2Sqrt': tf.scalar(Math.sqrt(1 - Math.pow(spec.beta2, step))),
  };
}

/**
 * One optimizer step. `step` is the 1-based index of the step being taken, or its stepScalars. Gradients must
 * already be masked. Returns new tensors; the caller disposes the old ones. Call inside tf.tidy.
 */
export function applyUpdate(
  spec: OptimizerSpec,
  params: Tensors,
  grads: Tensors,
  slots: Tensors,
  step: number | Tensors,
): { params: Tensors; slots: Tensors } {
  const newParams: Tensors = {};
  const newSlots: Tensors = {};
  // AdamW's decay is decoupled: it scales the weights (below), it is not added to the gradient.
  const wd = spec.kind === 'adamw' ? 0 : (spec.weightDecay ?? 0);
  const wdT = wd > 0 ? tf.scalar(wd) : null;
  if (spec.kind === 'sgd') {
    const lr = typeof step === 'number' ? tf.scalar(spec.lr) : (step['sgd/lr'] ?? tf.scalar(spec.lr));
    const mom = tf.scalar(spec.momentum);
    for (const [name, w] of Object.entries(params)) {
      let g = grads[name];
      if (!g) throw new Error(`internal: no gradient for '${name}'`);
      if (wdT) g = tf.add(g, tf.mul(wdT, w));
      if (spec.momentum > 0) {
        const key = momentumSlot(name);
        // torch initialises the buffer to the first gradient; with a zero buffer, 0*m + g == g exactly.
        const buf = tf.add(tf.mul(mom, slot(slots, key)), g);
        newSlots[key] = buf;
        g = spec.nesterov ? tf.add(g, tf.mul(mom, buf)) : buf;
      }
      newParams[name] = tf.sub(w, tf.mul(lr, g));
    }
  } else {
    const b1 = tf.scalar(spec.beta1);
    const b2 = tf.scalar(spec.beta2);
    const oneMinusB1 = tf.scalar(1 - spec.beta1);
    const oneMinusB2 = tf.scalar(1 - spec.beta2);
    const scalars = typeof step === 'number' ? stepScalars(spec, step) : step;
    const stepSize = slot(scalars, 'adam/stepSize');
    const bc2SqrtT = slot(scalars, 'adam/bc2Sqrt');
    const eps = tf.scalar(spec.eps);
    for (const [name, w] of Object.entries(params)) {
      let g = grads[name];
      if (!g) throw new Error(`internal: no gradient for '${name}'`);
      if (wdT) g = tf.add(g, tf.mul(wdT, w));
      const m = tf.add(tf.mul(b1, slot(slots, `m/${name}`)), tf.mul(oneMinusB1, g));
      const v = tf.add(tf.mul(b2, slot(slots, `v/${name}`)), tf.mul(oneMinusB2, tf.mul(g, g)));
      newSlots[`m/${name}`] = m;
      newSlots[`v/${name}`] = v;
      const denom = tf.add(tf.div(tf.sqrt(v), bc2SqrtT), eps);
      // torch's AdamW: param.mul_(1 − lr·wd), then the Adam step on the decayed weights.
      const decayed =
        spec.kind === 'adamw' && spec.weightDecay > 0 ? tf.mul(w, slot(scalars, 'adamw/decay')) : w;
      newParams[name] = tf.sub(decayed, tf.mul(stepSize, tf.div(m, denom)));
    }
  }
  return { params: newParams, slots: newSlots };
}
