import { Rng, deriveSeed } from '../rng.js';
import { hostTensor, sizeOf, type HostTensor, type NamedTensors } from '../tensors.js';
import type { ParamSpec } from './types.js';

/**
 * Kaiming/He normal, fan_in mode, gain sqrt(2) (ReLU): N(0, 2/fan_in), as PyTorch's
 * kaiming_normal_(nonlinearity='relu') and open_lth use. Dense weights are stored [fan_in, fan_out] (x @ W).
 * Each parameter gets its own stream, keyed by (seed, name), so adding a layer never shifts another's values.
 */
export function kaimingNormal(seed: number, spec: ParamSpec, fanIn: number): HostTensor {
  const rng = new Rng(deriveSeed(seed, 'init', spec.name));
  const std = Math.sqrt(2 / fanIn);
  const t = hostTensor('float32', spec.shape);
  const n = sizeOf(spec.shape);
  for (let i = 0; i < n; i++) t.data[i] = rng.normal() * std;
  return t;
}

export function zeros(spec: ParamSpec): HostTensor {
  return hostTensor('float32', spec.shape);
}

/**
 * A model's initial parameters: Kaiming-normal weights with the given fan-in, their std divided by `divisor`
 * where a layer wants a smaller start, and zero biases.
 */
export function initParams(
  seed: number,
  params: readonly ParamSpec[],
  fanIn: (p: ParamSpec) => number,
  divisor: (p: ParamSpec) => number = () => 1,
): NamedTensors {
  const out: NamedTensors = {};
  for (const p of params) {
    if (p.kind === 'bias') {
      out[p.name] = zeros(p);
      continue;
    }
    if (p.kind === 'gain') {
      out[p.name] = hostTensor('float32', p.shape, new Float32Array(sizeOf(p.shape)).fill(1));
      continue;
    }
    const t = kaimingNormal(seed, p, fanIn(p));
    const div = divisor(p);
    if (div !== 1) for (let i = 0; i < t.data.length; i++) t.data[i] = (t.data[i] as number) / div;
    out[p.name] = t;
  }
  return out;
}
