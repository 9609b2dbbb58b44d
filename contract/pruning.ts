// The pruning a lottery spec asks for, and what it means for a given model: the ml/pruning strategy of one IMP
// level, with the model's layer names filled in and checked, and the strategies the controls derive from the
// trunk's. Pure: ml/pruning works on host tensors only, so this is importable in the workflow sandbox.
import { z } from 'zod';

import type { ModelDef } from '../ml/models/types';
import { prunableNames, type PruningStrategy, type SparsityReport } from '../ml/pruning';
import { SpecError, specError } from './spec';

const rate = z.number().min(0).lt(1);
const layerNames = z.array(z.string().min(1));

/**
 * Which weights each level removes (ml/pruning). Biases are never pruned. `exclude` lists prunable weights to
 * leave dense; omitted, global magnitude excludes the output layer (open_lth) and layerwise excludes nothing.
 */
export const pruningSpecSchema = z.discriminatedUnion('kind', [
  z
    .object({
      kind: z.literal('global-magnitude'),
      fraction: rate.default(0.2),
      exclude: layerNames.optional(),
    })
    .strict(),
  z
    .object({
      kind: z.literal('layerwise-magnitude'),
      /** Share of each layer's surviving weights removed per level (Frankle & Carbin: 0.2). */
      fraction: rate.default(0.2),
      /** Share for the output layer (Frankle & Carbin: 0.1). */
      outputFraction: rate.default(0.1),
      /** Per-layer overrides by weight name, e.g. {"fc1.weight": 0.3}. */
      fractions: z.record(z.string(), rate).optional(),
      exclude: layerNames.optional(),
    })
    .strict(),
]);

export type PruningSpec = z.infer<typeof pruningSpecSchema>;

/** The model's output layer: its last prunable weight. */
export function outputLayer(model: ModelDef): string {
  const names = prunableNames(model.params);
  const last = names[names.length - 1];
  if (last === undefined) throw new SpecError(`${model.name} has no prunable weights`, []);
  return last;
}

function checkNames(model: ModelDef, names: readonly string[], field: string): void {
  const known = new Set(prunableNames(model.params));
  const bad = names.filter((n) => !known.has(n));
  if (bad.length > 0) {
    throw specError(
      'lottery spec',
      field,
      `${bad.map((b) => `'${b}'`).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not a prunable weight of ${model.name} (prunable: ${[...known].join(', ')})`,
    );
  }
}

/** The strategy one IMP level applies, with the model's layer names filled in and checked. */
export function resolvePruning(pruning: PruningSpec, model: ModelDef): PruningStrategy {
  const names = prunableNames(model.params);
  const out = outputLayer(model);
  if (pruning.kind === 'global-magnitude') {
    const exclude = pruning.exclude ?? [out];
    checkNames(model, exclude, 'pruning.exclude');
    if (exclude.length >= names.length)
      throw specError('lottery spec', 'pruning.exclude', 'leaves no layer to prune');
    return { kind: 'global-magnitude', fraction: pruning.fraction, exclude };
  }
  const exclude = pruning.exclude ?? [];
  checkNames(model, exclude, 'pruning.exclude');
  checkNames(model, Object.keys(pruning.fractions ?? {}), 'pruning.fractions');
  const fractions: Record<string, number> = {};
  for (const n of names) {
    fractions[n] = exclude.includes(n)
      ? 0
      : (pruning.fractions?.[n] ?? (n === out ? pruning.outputFraction : pruning.fraction));
  }
  return { kind: 'layerwise-magnitude', fractions };
}

/** The resolved strategy in the one form that enters the trunk's lineage id (layer lists sorted). */
export function canonicalStrategy(strategy: PruningStrategy): PruningStrategy {
  return strategy.kind === 'global-magnitude'
    ? { ...strategy, exclude: [...(strategy.exclude ?? [])].sort() }
    : strategy;
}

/** Weights pruned and their total over the layers not in `exclude`, at the target's sparsity. */
function prunedShare(target: SparsityReport, exclude: readonly string[]): number {
  let total = 0;
  let pruned = 0;
  for (const l of target.layers) {
    if (exclude.includes(l.name)) continue;
    total += l.total;
    pruned += l.total - l.remaining;
  }
  return total === 0 ? 0 : pruned / total;
}

/**
 * One-shot control: prune the dense weights in one step to the trunk's level-L sparsity with the trunk's kind of
 * ranking. Global: the same number of weights over the same layers (a fraction k/n of n dense weights prunes
 * exactly k). Layerwise: each layer's own count.
 */
export function oneShotStrategy(trunk: PruningStrategy, target: SparsityReport): PruningStrategy {
  if (trunk.kind === 'global-magnitude') {
    const exclude = [...(trunk.exclude ?? [])];
    return { kind: 'global-magnitude', fraction: prunedShare(target, exclude), exclude };
  }
  const fractions: Record<string, number> = {};
  for (const l of target.layers) fractions[l.name] = l.total === 0 ? 0 : (l.total - l.remaining) / l.total;
  return { kind: 'layerwise-magnitude', fractions };
}

/**
 * Global random control: from dense masks, remove as many weights as the trunk has at this level over the layers
 * the trunk prunes (all prunable layers but its exclusions), chosen uniformly at random among them.
 */
export function globalRandomStrategy(
  trunk: PruningStrategy,
  target: SparsityReport,
  seed: number,
): Extract<PruningStrategy, { kind: 'global-random' }> {
  const exclude =
    trunk.kind === 'global-magnitude' || trunk.kind === 'global-random'
      ? [...(trunk.exclude ?? [])]
      : target.layers.filter((l) => l.remaining === l.total).map((l) => l.name);
  return { kind: 'global-random', fraction: prunedShare(target, exclude), exclude, seed };
}
