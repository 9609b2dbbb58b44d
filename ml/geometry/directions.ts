/**
 * Filter-normalised random directions (Li et al. 2018, ../../../shared/REFERENCES.md): d ~ N(0, I) on the free
 * coordinates, then each filter of d rescaled to the norm of the same filter of θ, so that a step of size 1 along d
 * moves every filter by its own scale; biases and normalisation gains get 0.
 *
 * A filter is everything feeding one output unit: the last axis of a weight ([in, out] dense, HWIO convolution) is
 * the unit. Both norms are over the free coordinates only, so a pruned coordinate is 0 in d and a filter pruned
 * entirely has a zero direction.
 */
import { Rng } from '../rng.js';
import { gaussian, type ParamSpace, type Vec } from './space.js';

export function filterNormalizedDirection(space: ParamSpace, theta: Vec, seed: number): Vec {
  const d = gaussian(space, new Rng(seed));
  space.params.forEach((p, i) => {
    const o = space.offsets[i] as number;
    const size = p.shape.reduce((a, b) => a * b, 1);
    if (p.kind !== 'weight' || p.shape.length < 2) {
      d.fill(0, o, o + size);
      return;
    }
    const units = p.shape[p.shape.length - 1] as number;
    const thetaNorm = new Float64Array(units);
    const dNorm = new Float64Array(units);
    for (let j = 0; j < size; j++) {
      const f = j % units;
      thetaNorm[f] = (thetaNorm[f] as number) + (space.free[o + j] ? (theta[o + j] as number) ** 2 : 0);
      dNorm[f] = (dNorm[f] as number) + (d[o + j] as number) ** 2;
    }
    for (let j = 0; j < size; j++) {
      const f = j % units;
      const dn = Math.sqrt(dNorm[f] as number);
      d[o + j] = dn > 0 ? ((d[o + j] as number) * Math.sqrt(thetaNorm[f] as number)) / dn : 0;
    }
  });
  return d;
}
