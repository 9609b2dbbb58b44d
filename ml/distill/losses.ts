import * as tf from '@tensorflow/tfjs-core';
import '../gradients.js';
import { softmaxCrossEntropy } from '../native/kernels.js';
import { checkTemperature } from './targets.js';

/** Cross-entropy to integer labels, mean over the batch (one native op on native TensorFlow). */
export function crossEntropyToLabels(logits: tf.Tensor2D, labels: tf.Tensor1D): tf.Scalar {
  return tf.tidy(() => {
    const oneHot = tf.cast(tf.oneHot(tf.cast(labels, 'int32'), logits.shape[1]), 'float32') as tf.Tensor2D;
    return softmaxCrossEntropy(logits, oneHot);
  });
}

/**
 * Soft knowledge distillation (Hinton et al.): τ² · KL(q ‖ softmax(s/τ)), mean over the batch, where q is the
 * teacher's distribution at τ (targets.ts). The τ² keeps the gradient's scale independent of τ: ∂/∂s = τ(softmax(s/τ) − q)/B.
 */
export function softKd(studentLogits: tf.Tensor2D, target: tf.Tensor2D, temperature: number): tf.Scalar {
  checkTemperature(temperature);
  return tf.tidy(() => {
    const logQ = tf.log(tf.add(target, 1e-30));
    const logP = tf.logSoftmax(tf.mul(studentLogits, 1 / temperature));
    // Σ q (log q − log p); terms with q = 0 contribute 0 (q·log q → 0, kept finite by the 1e-30).
    const kl = tf.sum(tf.mul(target, tf.sub(logQ, logP)), 1);
    return tf.mul(tf.mean(kl), temperature * temperature) as tf.Scalar;
  });
}

/** Hard distillation (DeiT): cross-entropy to the teacher's argmax. */
export function hardKd(studentLogits: tf.Tensor2D, teacherLabels: tf.Tensor1D): tf.Scalar {
  return crossEntropyToLabels(studentLogits, teacherLabels);
}

/**
 * Feature distillation (FitNets' hint, as the ViT review's feature-based family): the mean squared error between the
 * student's projected patch tokens and the teacher's feature map at the same positions, both [B, positions, C],
 * averaged over every element. The teacher's side is a constant.
 */
export function featureKd(student: tf.Tensor3D, teacher: tf.Tensor3D): tf.Scalar {
  if (student.shape.join() !== teacher.shape.join()) {
    throw new Error(
      `featureKd: the student's features are [${student.shape.join(', ')}], the teacher's [${teacher.shape.join(', ')}]`,
    );
  }
  return tf.tidy(() => tf.mean(tf.square(tf.sub(student, teacher))) as tf.Scalar);
}
