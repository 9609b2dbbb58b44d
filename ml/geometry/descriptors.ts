/**
 * Cheap descriptors of a solution, all over the free (unpruned) coordinates: distances to the initialisation and
 * the rewind point, per-layer norms, sign agreement with the rewind point, and the overlap of two masks.
 */
import { MlInputError } from '../errors.js';
import type { NamedTensors } from '../host-tensor.js';
import type { ParamSpace, Vec } from './space.js';

/** ‖a − b‖ over the free coordinates. */
export function distance(space: ParamSpace, a: Vec, b: Vec): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) if (space.free[i]) s += ((a[i] as number) - (b[i] as number)) ** 2;
  return Math.sqrt(s);
}

/** ‖θ_p‖ over the free coordinates of each parameter p. */
export function layerNorms(space: ParamSpace, theta: Vec): Record<string, number> {
  const out: Record<string, number> = {};
  space.params.forEach((p, i) => {
    const o = space.offsets[i] as number;
    const end = i + 1 < space.params.length ? (space.offsets[i + 1] as number) : space.size;
    let s = 0;
    for (let j = o; j < end; j++) if (space.free[j]) s += (theta[j] as number) ** 2;
    out[p.name] = Math.sqrt(s);
  });
  return out;
}

/** Fraction of the free, nonzero-in-both coordinates where θ and the reference have the same sign. */
export function signAgreement(space: ParamSpace, theta: Vec, reference: Vec): number {
  let same = 0;
  let total = 0;
  for (let i = 0; i < theta.length; i++) {
    if (!space.free[i] || theta[i] === 0 || reference[i] === 0) continue;
    total++;
    if (Math.sign(theta[i] as number) === Math.sign(reference[i] as number)) same++;
  }
  return total === 0 ? NaN : same / total;
}

/** Jaccard index of the kept weights of two masks over the same parameters: |A ∩ B| / |A ∪ B|. */
export function maskJaccard(a: NamedTensors, b: NamedTensors): number {
  let both = 0;
  let either = 0;
  for (const [name, ma] of Object.entries(a)) {
    const mb = b[name];
    if (!mb || mb.data.length !== ma.data.length) throw new MlInputError(`the masks differ at '${name}'`);
    for (let i = 0; i < ma.data.length; i++) {
      const [x, y] = [ma.data[i] !== 0, mb.data[i] !== 0];
      if (x && y) both++;
      if (x || y) either++;
    }
  }
  if (Object.keys(b).some((n) => !(n in a))) throw new MlInputError('the masks cover different parameters');
  return either === 0 ? 1 : both / either;
}
