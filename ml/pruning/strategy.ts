import { MlInputError } from '../errors.js';

/**
 * How one IMP level chooses which surviving weights to remove. Every fraction is a share of the weights still
 * alive in the layers it covers (never of the original size), so repeated levels compound: 0.8^L remaining.
 *
 * - `global-magnitude` (open_lth): the smallest |w| among all covered layers, ranked together; `exclude` names
 *   layers left as they are (open_lth excludes the output layer).
 * - `layerwise-magnitude` (Frankle & Carbin 2019): each layer loses its own share of its smallest |w|, e.g.
 *   0.2 for hidden layers and 0.1 for the output layer.
 * - `global-random` / `layerwise-random`: the same counts, chosen uniformly among the survivors (controls).
 *
 * A layer that `fractions` does not list takes `defaultFraction`; with no default every layer must be listed, so
 * that a misspelt or forgotten name cannot silently leave a layer dense.
 */
export type PruningStrategy =
  | { kind: 'global-magnitude'; fraction: number; exclude?: string[] }
  | { kind: 'layerwise-magnitude'; fractions: Record<string, number>; defaultFraction?: number }
  | { kind: 'global-random'; fraction: number; seed: number; exclude?: string[] }
  | { kind: 'layerwise-random'; fractions: Record<string, number>; defaultFraction?: number; seed: number };

export type PruningStrategyKind = PruningStrategy['kind'];

export const PRUNING_STRATEGY_KINDS: readonly PruningStrategyKind[] = [
  'global-magnitude',
  'layerwise-magnitude',
  'global-random',
  'layerwise-random',
];

const FIELDS: Record<PruningStrategyKind, readonly string[]> = {
  'global-magnitude': ['kind', 'fraction', 'exclude'],
  'layerwise-magnitude': ['kind', 'fractions', 'defaultFraction'],
  'global-random': ['kind', 'fraction', 'seed', 'exclude'],
  'layerwise-random': ['kind', 'fractions', 'defaultFraction', 'seed'],
};

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A fraction of 1 would prune a layer completely, which no IMP level intends; it is refused rather than clamped. */
function fraction(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v >= 1) {
    throw new MlInputError(`${field} must be a number in [0, 1), got ${JSON.stringify(v) ?? String(v)}`);
  }
  return v;
}

function seed(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new MlInputError(
      `${field} must be a non-negative safe integer, got ${JSON.stringify(v) ?? String(v)}`,
    );
  }
  return v;
}

function names(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
    throw new MlInputError(`${field} must be an array of layer names`);
  }
  return [...(v as string[])];
}

function fractions(v: unknown, field: string): Record<string, number> {
  if (!isRecord(v)) throw new MlInputError(`${field} must be an object mapping layer names to fractions`);
  const out: Record<string, number> = {};
  for (const [k, f] of Object.entries(v)) out[k] = fraction(f, `${field}['${k}']`);
  return out;
}

/**
 * Checks a strategy that may have come from JSON (a workflow input, a config file) and returns a fresh copy.
 * Unknown fields are refused: a misspelt `exclude` would otherwise prune the output layer without a word.
 * Layer names are checked later, against the masks they are applied to.
 */
export function parsePruningStrategy(value: unknown): PruningStrategy {
  if (!isRecord(value)) throw new MlInputError('strategy must be an object');
  const kind = value.kind;
  if (typeof kind !== 'string' || !(PRUNING_STRATEGY_KINDS as readonly string[]).includes(kind)) {
    throw new MlInputError(
      `strategy.kind must be one of ${PRUNING_STRATEGY_KINDS.join(', ')}, got ${JSON.stringify(kind) ?? String(kind)}`,
    );
  }
  const k = kind as PruningStrategyKind;
  for (const f of Object.keys(value)) {
    if (!FIELDS[k].includes(f)) throw new MlInputError(`strategy.${f} is not a field of '${k}' strategies`);
  }
  const defaultFraction =
    value.defaultFraction === undefined
      ? undefined
      : fraction(value.defaultFraction, 'strategy.defaultFraction');
  switch (k) {
    case 'global-magnitude': {
      const exclude = names(value.exclude, 'strategy.exclude');
      return {
        kind: k,
        fraction: fraction(value.fraction, 'strategy.fraction'),
        ...(exclude ? { exclude } : {}),
      };
    }
    case 'global-random': {
      const exclude = names(value.exclude, 'strategy.exclude');
      return {
        kind: k,
        fraction: fraction(value.fraction, 'strategy.fraction'),
        seed: seed(value.seed, 'strategy.seed'),
        ...(exclude ? { exclude } : {}),
      };
    }
    case 'layerwise-magnitude':
      return {
        kind: k,
        fractions: fractions(value.fractions, 'strategy.fractions'),
        ...(defaultFraction !== undefined ? { defaultFraction } : {}),
      };
    case 'layerwise-random':
      return {
        kind: k,
        fractions: fractions(value.fractions, 'strategy.fractions'),
        seed: seed(value.seed, 'strategy.seed'),
        ...(defaultFraction !== undefined ? { defaultFraction } : {}),
      };
  }
}
