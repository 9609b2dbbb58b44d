import { MlInputError } from '../errors.js';
import { Rng, deriveSeed } from '../rng.js';
import type { NamedTensors } from '../host-tensor.js';
import { canonicalOrder, readMask, readWeight } from './masks.js';
import { pruneRandom, pruneSmallest, randomKeep, type Layer } from './select.js';
import { parsePruningStrategy, type PruningStrategy } from './strategy.js';

/**
 * How many of `remaining` survivors a level prunes: `Math.round(fraction × remaining)`, the product taken in
 * IEEE double precision, so halves round up (towards pruning more) and the count is the same on every machine.
 * With fraction < 1 it never exceeds `remaining`.
 */
export function pruneCount(fraction: number, remaining: number): number {
  return Math.round(fraction * remaining);
}

function layersFor(weights: NamedTensors, previousMasks: NamedTensors): Layer[] {
  if (typeof weights !== 'object' || weights === null)
    throw new MlInputError('weights must be an object of tensors');
  if (typeof previousMasks !== 'object' || previousMasks === null) {
    throw new MlInputError('previousMasks must be an object of tensors');
  }
  return canonicalOrder(Object.keys(previousMasks)).map((name) => {
    const m = previousMasks[name];
    const keep = readMask(m, `previousMasks['${name}']`);
    const w = readWeight(weights[name], `weights['${name}']`, m?.shape ?? []);
    const bits = new Uint32Array(w.buffer, w.byteOffset, w.length);
    let alive = 0;
    for (let i = 0; i < bits.length; i++) {
      // Non-finite keys would sort above every finite weight and hide a diverged run; refuse them instead.
      if (((bits[i] as number) & 0x7fffffff) >= 0x7f800000) {
        throw new MlInputError(`weights['${name}'][${i}] is ${w[i]}; magnitudes must be finite`);
      }
      alive += keep[i] as number;
    }
    return { name, bits, keep, alive };
  });
}

function checkNames(names: readonly string[], known: ReadonlySet<string>, field: string): void {
  for (const n of names) {
    if (!known.has(n))
      throw new MlInputError(`${field}: unknown layer '${n}' (masked layers: ${[...known].join(', ')})`);
  }
}

function fractionFor(
  s: { fractions: Record<string, number>; defaultFraction?: number },
  name: string,
): number {
  const f = Object.hasOwn(s.fractions, name) ? s.fractions[name] : s.defaultFraction;
  if (f === undefined) {
    throw new MlInputError(
      `strategy.fractions has no entry for layer '${name}' and strategy.defaultFraction is not set`,
    );
  }
  return f;
}

/**
 * One IMP level: prunes the weights chosen by `strategy` among those still alive in `previousMasks`, ranked by
 * `weights` (the trained weights of the previous level). Returns new uint8 masks with the same layer names.
 *
 * - The layers are exactly the keys of `previousMasks`; `weights` must hold a float32 tensor of the same shape for
 *   each (other entries, such as biases, are ignored). A weight whose mask is 0 stays pruned whatever its value,
 *   so the new masks are always a subset of the previous ones.
 * - Counts: see {@link pruneCount}; over each layer's survivors (layerwise) or over all survivors of the layers
 *   not excluded (global).
 * - Ties and layer order: layers are taken in UTF-16 code-unit order of their names, and magnitude ties go to the
 *   earlier layer, then the lower flat index (see select.ts). Random strategies draw from ml/rng.ts: global ones
 *   one stream from `deriveSeed(seed, 'global-random')` over the survivors in that order, layerwise ones a stream
 *   per layer from `deriveSeed(seed, 'layerwise-random', name)`, so a layer's draw does not depend on the others.
 *   Give each IMP level its own seed (e.g. `deriveSeed(seed, 'level', L)`) if levels should draw independently.
 * - Refused with MlInputError: non-finite weights, masks other than 0/1, shape mismatches, unknown layer names in
 *   the strategy, fractions outside [0, 1).
 */
export function prune(
  weights: NamedTensors,
  previousMasks: NamedTensors,
  strategy: PruningStrategy,
): NamedTensors {
  const s = parsePruningStrategy(strategy);
  const layers = layersFor(weights, previousMasks);
  const known = new Set(layers.map((l) => l.name));

  switch (s.kind) {
    case 'global-magnitude':
    case 'global-random': {
      checkNames(s.exclude ?? [], known, 'strategy.exclude');
      const excluded = new Set(s.exclude ?? []);
      const group = layers.filter((l) => !excluded.has(l.name));
      const k = pruneCount(
        s.fraction,
        group.reduce((n, l) => n + l.alive, 0),
      );
      if (s.kind === 'global-magnitude') pruneSmallest(group, k);
      else pruneRandom(group, k, new Rng(deriveSeed(s.seed, 'global-random')));
      break;
    }
    case 'layerwise-magnitude':
    case 'layerwise-random': {
      checkNames(Object.keys(s.fractions), known, 'strategy.fractions');
      const ks = layers.map((l) => pruneCount(fractionFor(s, l.name), l.alive));
      layers.forEach((l, i) => {
        const k = ks[i] as number;
        if (s.kind === 'layerwise-magnitude') pruneSmallest([l], k);
        else pruneRandom([l], k, new Rng(deriveSeed(s.seed, 'layerwise-random', l.name)));
      });
      break;
    }
  }

  const byName = new Map(layers.map((l) => [l.name, l]));
  const out: NamedTensors = {};
  for (const name of Object.keys(previousMasks)) {
    const l = byName.get(name) as Layer;
    out[name] = { dtype: 'uint8', shape: [...(previousMasks[name]?.shape ?? [])], data: l.keep };
  }
  return out;
}

/**
 * Random masks with exactly the per-layer remaining counts of `reference` (the random-pruning control: same
 * sparsity per layer, positions drawn uniformly over the whole layer, unrelated to the reference's positions).
 * Each layer draws from its own stream, `deriveSeed(seed, 'masks-from-sparsity', name)`.
 */
export function masksFromSparsity(reference: NamedTensors, seed: number): NamedTensors {
  if (typeof reference !== 'object' || reference === null)
    throw new MlInputError('reference must be an object of masks');
  if (!Number.isSafeInteger(seed) || seed < 0)
    throw new MlInputError(`seed must be a non-negative safe integer, got ${seed}`);
  const out: NamedTensors = {};
  for (const [name, m] of Object.entries(reference)) {
    const keep = readMask(m, `reference['${name}']`);
    let count = 0;
    for (let i = 0; i < keep.length; i++) count += keep[i] as number;
    out[name] = {
      dtype: 'uint8',
      shape: [...m.shape],
      data: randomKeep(keep.length, count, new Rng(deriveSeed(seed, 'masks-from-sparsity', name))),
    };
  }
  return out;
}
