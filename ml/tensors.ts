// TF.js tensors to and from host tensors (ml/host-tensor.ts, re-exported here).
import * as tf from '@tensorflow/tfjs-core';

import { assertHostTensor, type HostTensor, type NamedTensors } from './host-tensor.js';

export * from './host-tensor.js';

/**
 * Copies a TF.js tensor to the host. `bool` tensors become uint8 (TF.js already stores them as bytes).
 * Synchronous: on asynchronous backends (tfjs-node-gpu) prefer {@link toHostAsync} inside loops.
 */
export function toHost(t: tf.Tensor): HostTensor {
  return fromTypedData(t.dtype, t.shape, t.dataSync());
}

export async function toHostAsync(t: tf.Tensor): Promise<HostTensor> {
  return fromTypedData(t.dtype, t.shape, await t.data());
}

function fromTypedData(dtype: tf.DataType, shape: number[], src: tf.TypedArray | string[]): HostTensor {
  // Backends may hand out views of their own buffers: always copy so that later kernels cannot alias it.
  switch (dtype) {
    case 'float32':
      return { dtype: 'float32', shape: [...shape], data: Float32Array.from(src as Float32Array) };
    case 'int32':
      return { dtype: 'int32', shape: [...shape], data: Int32Array.from(src as Int32Array) };
    case 'bool':
      return { dtype: 'uint8', shape: [...shape], data: Uint8Array.from(src as Uint8Array) };
    default:
      throw new Error(`toHost: unsupported tensor dtype '${dtype}'`);
  }
}

/**
 * Copies a host tensor into a new TF.js tensor on the current backend. TF.js has no uint8 dtype, so uint8 data
 * becomes int32 unless `dtype` asks for float32 (as masks do).
 */
export function fromHost(h: HostTensor, dtype?: 'float32' | 'int32'): tf.Tensor {
  assertHostTensor(h);
  const target = dtype ?? (h.dtype === 'float32' || h.dtype === 'float64' ? 'float32' : 'int32');
  if (target === 'float32') {
    return tf.tensor(
      h.dtype === 'float32' ? h.data.slice() : Float32Array.from(h.data),
      [...h.shape],
      'float32',
    );
  }
  if (h.dtype === 'float32' || h.dtype === 'float64') {
    for (const v of h.data) {
      if (!Number.isInteger(v))
        throw new Error(`fromHost: float32 tensor holds non-integer ${v}, cannot make int32`);
    }
  }
  return tf.tensor(Int32Array.from(h.data), [...h.shape], 'int32');
}

export function namedToHost(ts: Record<string, tf.Tensor>): NamedTensors {
  const out: NamedTensors = {};
  for (const [k, v] of Object.entries(ts)) out[k] = toHost(v);
  return out;
}

export function namedFromHost(ts: NamedTensors, dtype?: 'float32' | 'int32'): Record<string, tf.Tensor> {
  const out: Record<string, tf.Tensor> = {};
  try {
    for (const [k, v] of Object.entries(ts)) {
      try {
        out[k] = fromHost(v, dtype);
      } catch (e) {
        throw new Error(`${k}: ${(e as Error).message}`, { cause: e });
      }
    }
  } catch (e) {
    tf.dispose(Object.values(out));
    throw e;
  }
  return out;
}
