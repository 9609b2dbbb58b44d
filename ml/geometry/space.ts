/**
 * The parameter space the measures work in: every parameter of a model laid end to end as one float64 vector (host
 * side, so that sums, norms and dot products are exact to double precision whatever the backend), and the
 * subspace a mask leaves free (pruned coordinates are fixed at 0 and never moved).
 */
import { MlInputError } from '../errors.js';
import { hostTensor, sizeOf, type HostTensor, type NamedTensors } from '../host-tensor.js';
import type { ParamSpec } from '../models/types.js';
import { Rng } from '../rng.js';

export type Vec = Float64Array;

export interface ParamSpace {
  params: readonly ParamSpec[];
  /** Offset of each parameter in the flat vector, in `params` order. */
  offsets: number[];
  size: number;
  /** 1 where a coordinate is free (unpruned), 0 where the mask pruned it. */
  free: Uint8Array;
  /** Number of free coordinates: the dimension n of the subspace. */
  freeCount: number;
}

/** The space of `params` under `masks` (a mask per prunable weight, 0 = pruned; none: everything free). */
export function paramSpace(params: readonly ParamSpec[], masks?: NamedTensors): ParamSpace {
  const offsets: number[] = [];
  let size = 0;
  for (const p of params) {
    offsets.push(size);
    size += sizeOf(p.shape);
  }
  const free = new Uint8Array(size).fill(1);
  for (const [name, mask] of Object.entries(masks ?? {})) {
    const at = params.findIndex((p) => p.name === name);
    const p = params[at];
    if (!p) throw new MlInputError(`mask '${name}' is not a parameter of the model`);
    if (mask.data.length !== sizeOf(p.shape)) {
      throw new MlInputError(
        `mask '${name}' has ${mask.data.length} entries, the parameter ${sizeOf(p.shape)}`,
      );
    }
    const o = offsets[at] as number;
    for (let i = 0; i < mask.data.length; i++) if (mask.data[i] === 0) free[o + i] = 0;
  }
  let freeCount = 0;
  for (let i = 0; i < size; i++) freeCount += free[i] as number;
  return { params, offsets, size, free, freeCount };
}

export function flatten(space: ParamSpace, weights: NamedTensors): Vec {
  const out = new Float64Array(space.size);
  space.params.forEach((p, i) => {
    const t = weights[p.name];
    if (!t) throw new MlInputError(`weights lack '${p.name}'`);
    if (t.data.length !== sizeOf(p.shape)) {
      throw new MlInputError(
        `'${p.name}' has ${t.data.length} values, the model's shape [${p.shape.join(', ')}]`,
      );
    }
    out.set(t.data, space.offsets[i]);
  });
  return out;
}

export function unflatten(space: ParamSpace, v: Vec): NamedTensors {
  const out: NamedTensors = {};
  space.params.forEach((p, i) => {
    const t: HostTensor = hostTensor('float32', p.shape);
    const o = space.offsets[i] as number;
    (t.data as Float32Array).set(v.subarray(o, o + t.data.length));
    out[p.name] = t;
  });
  return out;
}

// ---- vector arithmetic ---------------------------------------------------------------------------------------------

export function dot(a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] as number) * (b[i] as number);
  return s;
}

export function norm(a: Vec): number {
  return Math.sqrt(dot(a, a));
}

/** a + s·b, new. */
export function axpy(a: Vec, s: number, b: Vec): Vec {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = (a[i] as number) + s * (b[i] as number);
  return out;
}

export function scale(a: Vec, s: number): Vec {
  return a.map((x) => x * s);
}

/** Zeroes the pruned coordinates, in place. */
export function restrict(space: ParamSpace, v: Vec): Vec {
  for (let i = 0; i < v.length; i++) if (space.free[i] === 0) v[i] = 0;
  return v;
}

/** A standard normal vector on the free coordinates (0 elsewhere). */
export function gaussian(space: ParamSpace, rng: Rng): Vec {
  const v = new Float64Array(space.size);
  for (let i = 0; i < v.length; i++) if (space.free[i]) v[i] = rng.normal();
  return v;
}

/** A Rademacher (±1) vector on the free coordinates (0 elsewhere). */
export function rademacher(space: ParamSpace, rng: Rng): Vec {
  const v = new Float64Array(space.size);
  for (let i = 0; i < v.length; i++) if (space.free[i]) v[i] = rng.float() < 0.5 ? -1 : 1;
  return v;
}

/** A uniformly random unit vector of the free subspace. */
export function unitDirection(space: ParamSpace, rng: Rng): Vec {
  const v = gaussian(space, rng);
  return scale(v, 1 / norm(v));
}
