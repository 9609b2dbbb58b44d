import type * as tf from '@tensorflow/tfjs-core';

/** A lookup of a model's parameter tensors by name that fails naming the model and the parameter. */
export function paramGetter(model: string): (params: Record<string, tf.Tensor>, name: string) => tf.Tensor {
  return (params, name) => {
    const t = params[name];
    if (!t) throw new Error(`${model}: missing parameter '${name}'`);
    return t;
  };
}
