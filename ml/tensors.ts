/**
 * Host-side tensors: plain typed arrays with a shape, independent of any TF.js backend.
 *
 * Everything that leaves `ml/` (checkpoints, masks, initial weights) is a HostTensor so that the store can
 * serialise it (safetensors) without touching TF.js, and so that a value cannot be invalidated by a backend
 * disposing or moving its memory.
 */
import * as tf from '@tensorflow/tfjs-core';

export type HostDType = 'float32' | 'int32' | 'uint8';
export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  data: Float32Array | Int32Array | Uint8Array;
}
export type NamedTensors = Record<string, HostTensor>;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function arrayFor(dtype: HostDType, n: number): Float32Array | Int32Array | Uint8Array {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint8':
      return new Uint8Array(n);
  }
}

function dtypeOfArray(data: unknown): HostDType | null {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'uint8';
  return null;
}

/** Throws with the tensor's name if its dtype, shape and data disagree. */
export function assertHostTensor(t: HostTensor, name = 'tensor'): void {
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new Error(
      `${name}: shape must be an array of non-negative integers, got ${JSON.stringify(t.shape)}`,
    );
  }
  const actual = dtypeOfArray(t.data);
  if (actual !== t.dtype) {
    throw new Error(`${name}: dtype is '${t.dtype}' but data is ${actual ?? typeof t.data}`);
  }
  const n = sizeOf(t.shape);
  if (t.data.length !== n) {
    throw new Error(`${name}: shape [${t.shape.join(', ')}] needs ${n} elements, data has ${t.data.length}`);
  }
}

export function hostTensor(
  dtype: HostDType,
  shape: readonly number[],
  data?: Float32Array | Int32Array | Uint8Array,
): HostTensor {
  const t: HostTensor = { dtype, shape: [...shape], data: data ?? arrayFor(dtype, sizeOf(shape)) };
  assertHostTensor(t);
  return t;
}

export function cloneHost(t: HostTensor): HostTensor {
  return { dtype: t.dtype, shape: [...t.shape], data: t.data.slice() };
}

export function cloneNamed(ts: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [k, v] of Object.entries(ts)) out[k] = cloneHost(v);
  return out;
}

/** Byte-level equality, so that -0 vs 0 and NaN payloads count as differences (what "bit-identical" means). */
export function hostBytesEqual(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.shape.length !== b.shape.length) return false;
  if (a.shape.some((d, i) => d !== b.shape[i])) return false;
  const ba = new Uint8Array(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const bb = new Uint8Array(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return Buffer.compare(ba, bb) === 0;
}

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
  const target = dtype ?? (h.dtype === 'float32' ? 'float32' : 'int32');
  if (target === 'float32') {
    return tf.tensor(
      h.dtype === 'float32' ? h.data.slice() : Float32Array.from(h.data),
      [...h.shape],
      'float32',
    );
  }
  if (h.dtype === 'float32') {
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
