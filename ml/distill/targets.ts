import * as tf from '@tensorflow/tfjs-core';

/** What a teacher gives per sample: raw logits (float32/float16 shards) or a distribution (top-k, reconstructed). */
export type TeacherKind = 'logits' | 'probabilities';

export interface TeacherTargets {
  kind: TeacherKind;
  /** [B, C]. */
  values: tf.Tensor2D;
}

/**
 * The teacher's distribution at temperature τ: softmax(t/τ) for logits; for probabilities p, p^(1/τ) renormalised,
 * which is softmax(t/τ) again when p = softmax(t), and for a top-k reconstruction tempers the spread leftover too.
 * A constant of the student's training: nothing here is differentiated.
 */
export function teacherDistribution(t: TeacherTargets, temperature: number): tf.Tensor2D {
  checkTemperature(temperature);
  return tf.tidy(() => {
    if (t.kind === 'logits') return tf.softmax(tf.mul(t.values, 1 / temperature)) as tf.Tensor2D;
    if (temperature === 1) return tf.clone(t.values);
    // log p / τ, with p = 0 kept at −∞ (exp gives 0 back) rather than NaN.
    return tf.softmax(tf.mul(tf.log(t.values), 1 / temperature)) as tf.Tensor2D;
  });
}

/** The ensemble's distribution: the mean of the teachers' distributions at temperature τ (LIB-KD's averaged target). */
export function averageDistribution(teachers: TeacherTargets[], temperature: number): tf.Tensor2D {
  if (teachers.length === 0) throw new Error('averageDistribution: no teachers');
  return tf.tidy(() => {
    const sum = teachers.map((t) => teacherDistribution(t, temperature)).reduce((a, b) => tf.add(a, b));
    return tf.mul(sum, 1 / teachers.length) as tf.Tensor2D;
  });
}

/** The teacher's hard label per sample: argmax of its logits or probabilities (the same class either way). */
export function teacherLabels(t: TeacherTargets): tf.Tensor1D {
  return tf.argMax(t.values, 1) as tf.Tensor1D;
}

export function checkTemperature(temperature: number): void {
  if (!(temperature > 0) || !Number.isFinite(temperature)) {
    throw new Error(`temperature must be a positive finite number, got ${temperature}`);
  }
}
