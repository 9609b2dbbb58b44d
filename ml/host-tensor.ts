/**
 * Host-side tensors: plain typed arrays with a shape, independent of any TF.js backend.
 *
 * Everything that leaves `ml/` (checkpoints, masks, initial weights) is a HostTensor so that the store can
 * serialise it (safetensors) without touching TF.js, and so that a value cannot be invalidated by a backend
 * disposing or moving its memory. This module imports nothing: the store names its tensors with these types, and
 * pure code over host tensors (ml/pruning) stays importable where TensorFlow.js is not (the workflow sandbox).
 */
export type HostDType = 'float32' | 'float64' | 'int32' | 'uint8';
export interface HostTensor {
  dtype: HostDType;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array;
}
export type NamedTensors = Record<string, HostTensor>;

export function sizeOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function arrayFor(dtype: HostDType, n: number): HostTensor['data'] {
  switch (dtype) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'uint8':
      return new Uint8Array(n);
  }
}

function dtypeOfArray(data: unknown): HostDType | null {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
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
