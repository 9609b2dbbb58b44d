// Seeded normal weights for a model's parameters (or any parameter list), as host tensors: fixtures for tests
// that need weights of the right names and shapes without training.
import type { ParamSpec } from '../../ml/models/types';
import { Rng } from '../../ml/rng';
import { hostTensor, type NamedTensors } from '../../ml/tensors';

export function randomWeights(params: readonly ParamSpec[], seed: number, scale = 1): NamedTensors {
  const rng = new Rng(seed);
  const out: NamedTensors = {};
  for (const p of params) {
    const t = hostTensor('float32', [...p.shape]);
    for (let i = 0; i < t.data.length; i++) t.data[i] = rng.normal() * scale;
    out[p.name] = t;
  }
  return out;
}

/**
 * Seeded random 0/1 masks for the prunable parameters: each coordinate kept with probability `keep` (drawn in
 * parameter order, one uniform draw per coordinate).
 */
export function randomMasks(
  params: readonly ParamSpec[],
  seed: number,
  keep: number,
  dtype: 'float32' | 'uint8' = 'float32',
): NamedTensors {
  const rng = new Rng(seed);
  const out: NamedTensors = {};
  for (const p of params.filter((q) => q.prunable)) {
    const m = hostTensor(dtype, [...p.shape]);
    for (let i = 0; i < m.data.length; i++) m.data[i] = rng.float() < keep ? 1 : 0;
    out[p.name] = m;
  }
  return out;
}
