/**
 * Mask sets: one 0/1 tensor per prunable weight, keyed by parameter name, 1 = the weight survives.
 *
 * Masks made here are **uint8**: a mask is stored as safetensors (U8), and one byte per weight is a quarter of a
 * float32 mask for LeNet's 266k weights and the few million of the conv nets. The trainer accepts any host dtype
 * and widens to float32 itself, and every function here accepts float32, int32 or uint8 masks whose values are
 * exactly 0 or 1, so masks written by older code or by hand still work.
 */
import { MlInputError } from '../errors.js';
import type { ParamSpec } from '../models/types.js';
import { cloneHost, sizeOf, type HostTensor, type NamedTensors } from '../host-tensor.js';

/** Layer names sorted by UTF-16 code units: the one layer order every machine and every key order agrees on. */
export function canonicalOrder(names: Iterable<string>): string[] {
  return [...names].sort();
}

export function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function fmtShape(s: readonly number[]): string {
  return `[${s.join(', ')}]`;
}

function isPrunable(p: ParamSpec): boolean {
  // Biases are never pruned (Frankle & Carbin and open_lth prune weights only), whatever a spec claims.
  return p.kind === 'weight' && p.prunable;
}

/**
 * Checks that `t` is a well-formed 0/1 tensor and returns its values as a fresh uint8 array.
 * `field` names the tensor in errors, e.g. `previousMasks['fc1.weight']`.
 */
export function readMask(t: HostTensor | undefined, field: string, shape?: readonly number[]): Uint8Array {
  if (!t || typeof t !== 'object') throw new MlInputError(`${field} is missing`);
  if (!Array.isArray(t.shape) || t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new MlInputError(`${field}: shape must be an array of non-negative integers`);
  }
  const ok =
    (t.dtype === 'float32' && t.data instanceof Float32Array) ||
    (t.dtype === 'int32' && t.data instanceof Int32Array) ||
    (t.dtype === 'uint8' && t.data instanceof Uint8Array);
  if (!ok)
    throw new MlInputError(`${field}: dtype '${String(t.dtype)}' does not match its data or is unsupported`);
  const n = sizeOf(t.shape);
  if (t.data.length !== n) {
    throw new MlInputError(
      `${field}: shape ${fmtShape(t.shape)} needs ${n} elements, data has ${t.data.length}`,
    );
  }
  if (shape && !sameShape(t.shape, shape)) {
    throw new MlInputError(
      `${field}: shape ${fmtShape(t.shape)} does not match the weight's ${fmtShape(shape)}`,
    );
  }
  const out = new Uint8Array(n);
  const d = t.data;
  for (let i = 0; i < n; i++) {
    const v = d[i] as number;
    if (v === 1) out[i] = 1;
    else if (v !== 0) throw new MlInputError(`${field} holds ${v} at index ${i}; masks must be 0 or 1`);
  }
  return out;
}

/** Returns the float32 data of a weight, refusing other dtypes and a shape that differs from `shape`. */
export function readWeight(t: HostTensor | undefined, field: string, shape: readonly number[]): Float32Array {
  if (!t || typeof t !== 'object') throw new MlInputError(`${field} is missing`);
  if (t.dtype !== 'float32' || !(t.data instanceof Float32Array)) {
    throw new MlInputError(`${field} must be float32, got '${String(t.dtype)}'`);
  }
  if (!Array.isArray(t.shape) || !sameShape(t.shape, shape)) {
    throw new MlInputError(
      `${field}: shape ${fmtShape(t.shape ?? [])} does not match the mask's ${fmtShape(shape)}`,
    );
  }
  if (t.data.length !== sizeOf(shape)) {
    throw new MlInputError(
      `${field}: shape ${fmtShape(shape)} needs ${sizeOf(shape)} elements, data has ${t.data.length}`,
    );
  }
  return t.data;
}

/**
 * Names of the parameters that may be pruned, in `params` order: weights marked `prunable`, never biases.
 * `include` keeps only the names it lists, `exclude` drops those it lists; a name in either that is not a
 * prunable parameter is refused, since it is a typo or a bias.
 */
export function prunableNames(
  params: ParamSpec[],
  opts: { include?: string[]; exclude?: string[] } = {},
): string[] {
  const all = params.filter(isPrunable).map((p) => p.name);
  const known = new Set(all);
  for (const key of ['include', 'exclude'] as const) {
    for (const n of opts[key] ?? []) {
      if (known.has(n)) continue;
      const p = params.find((q) => q.name === n);
      throw new MlInputError(
        p ? `${key}: '${n}' is a ${p.kind} that is not prunable` : `${key}: unknown layer '${n}'`,
      );
    }
  }
  const inc = opts.include ? new Set(opts.include) : null;
  const exc = new Set(opts.exclude ?? []);
  return all.filter((n) => (inc === null || inc.has(n)) && !exc.has(n));
}

/** Level-0 masks: every prunable weight alive (uint8 ones), one mask per prunable parameter. */
export function denseMasks(params: ParamSpec[]): NamedTensors {
  const out: NamedTensors = {};
  for (const p of params) {
    if (!isPrunable(p)) continue;
    out[p.name] = { dtype: 'uint8', shape: [...p.shape], data: new Uint8Array(sizeOf(p.shape)).fill(1) };
  }
  return out;
}

/**
 * A mask set for a model must hold exactly one 0/1 mask per prunable parameter, shaped like it. A missing mask is
 * refused rather than read as dense, because `prune` would then never prune that layer without saying so.
 */
export function validateMasks(masks: NamedTensors, params: ParamSpec[]): void {
  if (typeof masks !== 'object' || masks === null)
    throw new MlInputError('masks must be an object of tensors');
  const byName = new Map(params.map((p) => [p.name, p]));
  for (const [name, m] of Object.entries(masks)) {
    const p = byName.get(name);
    if (!p) throw new MlInputError(`masks['${name}']: unknown layer`);
    if (!isPrunable(p))
      throw new MlInputError(`masks['${name}']: a ${p.kind} that is not prunable cannot have a mask`);
    readMask(m, `masks['${name}']`, p.shape);
  }
  for (const p of params) {
    if (isPrunable(p) && !Object.hasOwn(masks, p.name))
      throw new MlInputError(`masks['${p.name}'] is missing`);
  }
}

/**
 * Copies `weights` and sets every pruned entry to +0 (not -0: checkpoints of masked runs are compared byte for
 * byte). Survivors keep their exact bits; weights without a mask (biases) are copied unchanged.
 */
export function applyMasks(weights: NamedTensors, masks: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, w] of Object.entries(weights)) out[name] = cloneHost(w);
  for (const [name, m] of Object.entries(masks)) {
    const w = out[name];
    if (!w) throw new MlInputError(`weights['${name}'] is missing but masks['${name}'] exists`);
    const keep = readMask(m, `masks['${name}']`);
    const data = readWeight(w, `weights['${name}']`, m.shape);
    for (let i = 0; i < keep.length; i++) if (keep[i] === 0) data[i] = 0;
  }
  return out;
}

export interface LayerSparsity {
  name: string;
  total: number;
  remaining: number;
  /** 100 × remaining / total; 100 for an empty layer. Unrounded: callers format. */
  remainingPct: number;
}

export interface SparsityReport {
  layers: LayerSparsity[];
  /** Over prunable weights only: biases are neither counted nor pruned, as in Frankle & Carbin's percentages. */
  total: number;
  remaining: number;
  remainingPct: number;
}

function pct(remaining: number, total: number): number {
  return total === 0 ? 100 : (100 * remaining) / total;
}

/**
 * Remaining weights per layer and overall. With `params` the masks are validated against the model and layers
 * follow the model's order; without, layers follow the masks' own key order.
 */
export function sparsityReport(masks: NamedTensors, params?: ParamSpec[]): SparsityReport {
  if (params) validateMasks(masks, params);
  const order = params ? prunableNames(params) : Object.keys(masks);
  const layers: LayerSparsity[] = [];
  let total = 0;
  let remaining = 0;
  for (const name of order) {
    const keep = readMask(masks[name], `masks['${name}']`);
    let r = 0;
    for (let i = 0; i < keep.length; i++) r += keep[i] as number;
    layers.push({ name, total: keep.length, remaining: r, remainingPct: pct(r, keep.length) });
    total += keep.length;
    remaining += r;
  }
  return { layers, total, remaining, remainingPct: pct(remaining, total) };
}
