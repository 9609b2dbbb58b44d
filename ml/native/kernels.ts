/**
 * Gradients that native TensorFlow computes in one op where tfjs composes several. Every tfjs op costs tens of µs of
 * JavaScript and binding around its kernel (bench/profile.ts), so a composite is paid per op, not per element:
 * tfjs's ReLU gradient, dy·step(x), is a Step that tfjs-node builds from IsNan, Greater, Fill and Select, then a
 * Cast and a Multiply, about ten kernel calls for what TensorFlow's ReluGrad does in one. The softmax cross-entropy
 * of a batch is some twenty kernel calls forward and backward as logSoftmax, multiply, sum, mean and their gradients;
 * TensorFlow's SoftmaxCrossEntropyWithLogits returns each row's loss and its gradient, softmax − labels, in one.
 *
 * Registered when a native backend loads (ml/backend.ts), as the `tensorflow` backend's kernels and as the
 * gradient of their forward kernel; other backends keep ml/gradients.ts' definitions. The values are the same:
 * ReluGrad is dy where x > 0 and 0 elsewhere, as dy·step(x), except that its zeros are all +0 where dy·0 is −0 for a
 * negative dy (test/ml-native-kernels.test.ts), which changes no sum that is not itself zero.
 */
import * as tf from '@tensorflow/tfjs-core';

export const NATIVE_RELU_GRAD = 'LthNativeReluGrad';
export const NATIVE_SOFTMAX_XENT = 'LthNativeSoftmaxCrossEntropy';

/** What the native backend offers kernels (tfjs-node's NodeJSKernelBackend, untyped across the package boundary). */
interface NativeBackend {
  executeMultipleOutputs(
    name: string,
    attrs: unknown[],
    inputs: tf.TensorInfo[],
    count: number,
  ): tf.TensorInfo[];
}

type TypeAttr = (name: string, dtype: tf.DataType) => unknown;

let registered = false;

/**
 * Registers the kernels and gradients above. `typeAttr` is the native package's createTensorsTypeOpAttr (the
 * TF_DataType attribute of an op), passed in so that this module does not load the package itself.
 */
export function registerNativeKernels(typeAttr: TypeAttr): void {
  if (registered) return;
  registered = true;
  // A kernel of the `tensorflow` backend that runs one float32 TensorFlow op on the named inputs, in that order.
  const nativeOp = (kernelName: string, op: string, inputNames: string[], outputs: number) =>
    tf.registerKernel({
      kernelName,
      backendName: 'tensorflow',
      kernelFunc: ({ inputs, backend }) =>
        (backend as unknown as NativeBackend).executeMultipleOutputs(
          op,
          [typeAttr('T', 'float32')],
          inputNames.map((n) => inputs[n] as tf.TensorInfo),
          outputs,
        ),
    });
  nativeOp(NATIVE_RELU_GRAD, 'ReluGrad', ['dy', 'x'], 1);
  nativeOp(NATIVE_SOFTMAX_XENT, 'SoftmaxCrossEntropyWithLogits', ['logits', 'labels'], 2);
  // Replaces tfjs's Relu gradient (registered when the native package loaded the tfjs union), for this backend only.
  const composite = tf.getGradient(tf.Relu);
  tf.registerGradient({
    kernelName: tf.Relu,
    inputsToSave: ['x'],
    gradFunc: (dy, saved, attrs) => {
      const x = saved[0] as tf.Tensor;
      if (tf.getBackend() === 'tensorflow' && x.dtype === 'float32' && !Array.isArray(dy)) {
        return {
          x: () => (tf.engine().runKernel(NATIVE_RELU_GRAD, { dy, x }) as tf.Tensor[])[0] as tf.Tensor,
        };
      }
      if (!composite) throw new Error('internal: no Relu gradient to fall back on');
      return composite.gradFunc(dy, saved, attrs);
    },
  });
}

/**
 * The mean softmax cross-entropy of logits [B, C] against one-hot labels [B, C]: one native op on native TensorFlow
 * (below), composed from tfjs ops elsewhere. The one definition ml/train and ml/distill use.
 */
export function softmaxCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar {
  return tf.tidy(
    () =>
      nativeSoftmaxCrossEntropy(logits, oneHot) ??
      (tf.neg(tf.mean(tf.sum(tf.mul(oneHot, tf.logSoftmax(logits)), 1))) as tf.Scalar),
  );
}

/**
 * The mean softmax cross-entropy of logits [B, C] against one-hot labels [B, C] as one native op, differentiable in the
 * logits (the op's own gradient, (softmax − labels)/B); null where the native kernel is not registered or not active,
 * so that the caller composes it from tfjs ops instead.
 */
export function nativeSoftmaxCrossEntropy(logits: tf.Tensor2D, oneHot: tf.Tensor2D): tf.Scalar | null {
  if (tf.getBackend() !== 'tensorflow' || !tf.getKernel(NATIVE_SOFTMAX_XENT, 'tensorflow')) return null;
  if (logits.dtype !== 'float32' || oneHot.dtype !== 'float32') return null;
  const batch = logits.shape[0];
  const f = tf.customGrad((...args: (tf.Tensor | tf.GradSaveFunc)[]) => {
    const [l, save] = args as [tf.Tensor, tf.GradSaveFunc];
    const [rows, backprop] = tf
      .engine()
      .runKernel(NATIVE_SOFTMAX_XENT, { logits: l, labels: oneHot }) as tf.Tensor[];
    save([backprop as tf.Tensor]);
    return {
      value: tf.mean(rows as tf.Tensor),
      gradFunc: (dy: tf.Tensor | tf.Tensor[], saved: tf.Tensor[]) =>
        tf.mul(saved[0] as tf.Tensor, tf.div(dy as tf.Tensor, batch)),
    };
  });
  return f(logits) as tf.Scalar;
}
