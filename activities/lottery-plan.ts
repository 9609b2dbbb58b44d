// Pure decisions of the lottery-ticket pipeline: content-addressed lineage ids, and the ml/pruning strategy a
// spec means for a given model. The CLI uses these too, to refuse a bad spec before starting anything.
import { getModel, type ModelDef } from '../ml/models';
import { prunableNames, type PruningStrategy, type SparsityReport } from '../ml/pruning';
import { contentHash } from '../store';
import { rewindStep, type BranchSpec, type LotterySpec, type PruningSpec } from '../workflows/lottery-specs';
import { SpecError } from '../workflows/specs';

/**
 * The trunk's identity: everything that determines its levels. The pruning enters as the strategy it resolves to
 * for this model (defaults filled in, layer lists sorted), so two ways of writing the same pruning share a
 * lineage. `levels` is left out on purpose, since level L depends only on levels below it: asking for more
 * levels later continues the same lineage.
 */
export function trunkLineageId(spec: LotterySpec): string {
  const strategy = resolvePruning(spec.pruning, getModel(spec.train.model));
  const canonical =
    strategy.kind === 'global-magnitude'
      ? { ...strategy, exclude: [...(strategy.exclude ?? [])].sort() }
      : strategy;
  return contentHash({
    kind: 'imp',
    train: spec.train,
    pruning: canonical,
    rewindStep: rewindStep(spec.rewind),
  }).slice(0, 24);
}

/** A branch's identity: its trunk's plus the branch. A rewind branch is a trunk with another rewind point. */
export function branchLineageId(spec: LotterySpec, branch: BranchSpec): string {
  if (branch.kind === 'rewind') return trunkLineageId({ ...spec, rewind: branch.to });
  // 'layerwise' is the default scope of random pruning: written or not, the same branch.
  const canonical =
    branch.kind === 'random-prune' && branch.scope === 'layerwise' ? { ...branch, scope: undefined } : branch;
  return contentHash({ kind: 'imp-branch', trunk: trunkLineageId(spec), branch: canonical }).slice(0, 24);
}

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
    const msg = `${field}: ${bad.map((b) => `'${b}'`).join(', ')} ${bad.length === 1 ? 'is' : 'are'} not a prunable weight of ${model.name} (prunable: ${[...known].join(', ')})`;
    throw new SpecError(`invalid lottery spec:\n  ${msg}`, [msg]);
  }
}

/** The strategy one IMP level applies, with the model's layer names filled in and checked. */
export function resolvePruning(pruning: PruningSpec, model: ModelDef): PruningStrategy {
  const names = prunableNames(model.params);
  const out = outputLayer(model);
  if (pruning.kind === 'global-magnitude') {
    const exclude = pruning.exclude ?? [out];
    checkNames(model, exclude, 'pruning.exclude');
    if (exclude.length >= names.length) {
      const msg = 'pruning.exclude: leaves no layer to prune';
      throw new SpecError(`invalid lottery spec:\n  ${msg}`, [msg]);
    }
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

/**
 * One-shot control: prune the dense weights in one step to the trunk's level-L sparsity with the trunk's kind of
 * ranking. Global: the same number of weights over the same layers (a fraction k/n of n dense weights prunes
 * exactly k). Layerwise: each layer's own count.
 */
export function oneShotStrategy(trunk: PruningStrategy, target: SparsityReport): PruningStrategy {
  if (trunk.kind === 'global-magnitude') {
    const excluded = new Set(trunk.exclude ?? []);
    let total = 0;
    let pruned = 0;
    for (const l of target.layers) {
      if (excluded.has(l.name)) continue;
      total += l.total;
      pruned += l.total - l.remaining;
    }
    return { kind: 'global-magnitude', fraction: total === 0 ? 0 : pruned / total, exclude: [...excluded] };
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
): Omit<Extract<PruningStrategy, { kind: 'global-random' }>, 'seed'> {
  const exclude =
    trunk.kind === 'global-magnitude' || trunk.kind === 'global-random'
      ? (trunk.exclude ?? [])
      : target.layers.filter((l) => l.remaining === l.total).map((l) => l.name);
  let total = 0;
  let pruned = 0;
  for (const l of target.layers) {
    if (exclude.includes(l.name)) continue;
    total += l.total;
    pruned += l.total - l.remaining;
  }
  return { kind: 'global-random', fraction: total === 0 ? 0 : pruned / total, exclude: [...exclude] };
}

/** Which branch kinds are a single level of training per trunk level (the rest is a whole IMP lineage). */
export function isPerLevelBranch(b: BranchSpec): b is Exclude<BranchSpec, { kind: 'rewind' }> {
  return b.kind !== 'rewind';
}
