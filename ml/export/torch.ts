/**
 * Weights in PyTorch's layout and names: a `state_dict` that the same architecture written with torch.nn
 * (bench/peer/lth_models.py) loads as is, and back. Each model says, per parameter, its PyTorch name and layout
 * (ParamSpec.torch); this module only moves values. Pure host-tensor code: exact, no TF.js, no rounding.
 */
import { MlInputError } from '../errors.js';
import { hostTensor, sizeOf, type HostTensor, type NamedTensors } from '../host-tensor.js';
import type { ParamSpec, TorchLayout } from '../models/types.js';

/** What the conversion needs of a model: its parameters (a ModelDef is one). */
export interface TorchExportable {
  name: string;
  params: readonly ParamSpec[];
}

/** `data` of row-major `shape` with its axes reordered: output axis k is input axis `perm[k]`. */
export function permuteAxes(
  data: Float32Array,
  shape: readonly number[],
  perm: readonly number[],
): Float32Array {
  const rank = shape.length;
  if (perm.length !== rank || [...perm].sort((a, b) => a - b).some((p, i) => p !== i)) {
    throw new Error(`internal: ${JSON.stringify(perm)} is not a permutation of ${rank} axes`);
  }
  const inStrides = new Array<number>(rank).fill(1);
  for (let k = rank - 2; k >= 0; k--) inStrides[k] = (inStrides[k + 1] as number) * (shape[k + 1] as number);
  const outShape = perm.map((p) => shape[p] as number);
  // Walk the output in order, stepping the input by the permuted strides.
  const strides = perm.map((p) => inStrides[p] as number);
  const out = new Float32Array(data.length);
  const index = new Array<number>(rank).fill(0);
  let src = 0;
  for (let o = 0; o < out.length; o++) {
    out[o] = data[src] as number;
    for (let k = rank - 1; k >= 0; k--) {
      index[k] = (index[k] as number) + 1;
      src += strides[k] as number;
      if ((index[k] as number) < (outShape[k] as number)) break;
      src -= (strides[k] as number) * (outShape[k] as number);
      index[k] = 0;
    }
  }
  return out;
}

interface Move {
  /** The shape the values are read as, the axis order applied, and the shape written. */
  view: number[];
  perm: number[];
  shape: number[];
}

/** From our layout of `shape` to PyTorch's. */
function toTorchMove(shape: readonly number[], layout: TorchLayout): Move {
  const s = [...shape];
  if (layout === 'as-is') return { view: s, perm: s.map((_, i) => i), shape: s };
  if (layout === 'linear') return { view: s, perm: [1, 0], shape: [s[1] as number, s[0] as number] };
  if (layout === 'conv') {
    const [kh, kw, cin, cout] = s as [number, number, number, number];
    return { view: s, perm: [3, 2, 0, 1], shape: [cout, cin, kh, kw] };
  }
  if (layout === 'conv1x1') return { view: s, perm: [1, 0], shape: [s[1] as number, s[0] as number, 1, 1] };
  if ('flattened' in layout) {
    const [h, w, c] = layout.flattened;
    const out = s[1] as number;
    return { view: [h, w, c, out], perm: [3, 2, 0, 1], shape: [out, c * h * w] };
  }
  return { view: s, perm: s.map((_, i) => i), shape: [...layout.shape] };
}

/** The inverse of toTorchMove: from PyTorch's layout back to ours of `shape`. */
function fromTorchMove(shape: readonly number[], layout: TorchLayout): Move {
  const forward = toTorchMove(shape, layout);
  const view = forward.perm.map((p) => forward.view[p] as number);
  const perm = new Array<number>(forward.perm.length);
  forward.perm.forEach((p, k) => (perm[p] = k));
  return { view, perm, shape: [...shape] };
}

function moveValues(t: HostTensor, move: Move): HostTensor {
  const out = hostTensor('float32', move.shape);
  out.data.set(permuteAxes(t.data as Float32Array, move.view, move.perm));
  return out;
}

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

function checkLayout(model: string, p: ParamSpec): void {
  const move = toTorchMove(p.shape, p.torch.layout);
  if (sizeOf(move.view) !== sizeOf(p.shape) || sizeOf(move.shape) !== sizeOf(p.shape)) {
    throw new Error(
      `internal: ${model}: ${p.name} [${p.shape.join(', ')}] cannot take PyTorch layout ${JSON.stringify(p.torch.layout)}`,
    );
  }
}

/** Every tensor of `given` is one the model expects, float32 and shaped as `shapeOf` says; names the first misfit. */
function checkTensors(what: string, given: NamedTensors, expected: Map<string, number[]>): void {
  for (const [name, shape] of expected) {
    const t = given[name];
    if (!t) throw new MlInputError(`${what}: missing tensor '${name}'`);
    if (t.dtype !== 'float32') throw new MlInputError(`${what}: '${name}' is ${t.dtype}, expected float32`);
    if (!sameShape(t.shape, shape)) {
      throw new MlInputError(
        `${what}: '${name}' has shape [${t.shape.join(', ')}], the model's is [${shape.join(', ')}]`,
      );
    }
  }
  const extra = Object.keys(given).filter((n) => !expected.has(n));
  if (extra.length > 0) {
    throw new MlInputError(`${what}: tensors the model does not have: ${extra.slice(0, 5).join(', ')}`);
  }
}

/** Our weights (names and layouts of `model.params`) as PyTorch's `state_dict`. */
export function toTorch(model: TorchExportable, weights: NamedTensors): NamedTensors {
  model.params.forEach((p) => checkLayout(model.name, p));
  checkTensors(`${model.name} weights`, weights, new Map(model.params.map((p) => [p.name, p.shape])));
  const out: NamedTensors = {};
  for (const p of model.params) {
    out[p.torch.name] = moveValues(weights[p.name] as HostTensor, toTorchMove(p.shape, p.torch.layout));
  }
  return out;
}

/** A PyTorch `state_dict` of the same architecture as our weights: the inverse of toTorch. */
export function fromTorch(model: TorchExportable, stateDict: NamedTensors): NamedTensors {
  model.params.forEach((p) => checkLayout(model.name, p));
  checkTensors(
    `${model.name} PyTorch state_dict`,
    stateDict,
    new Map(model.params.map((p) => [p.torch.name, toTorchMove(p.shape, p.torch.layout).shape])),
  );
  const out: NamedTensors = {};
  for (const p of model.params) {
    out[p.name] = moveValues(stateDict[p.torch.name] as HostTensor, fromTorchMove(p.shape, p.torch.layout));
  }
  return out;
}

/** The header of an exported file: enough for bench/peer/lth_models.py's `build` to make the model it loads into. */
export const TORCH_EXPORT_FORMAT = 'lth.torch-state-dict.v1';

export function torchMetadata(model: TorchExportable & { config?: unknown }): Record<string, string> {
  return {
    format: TORCH_EXPORT_FORMAT,
    model: model.name,
    ...(model.config !== undefined ? { config: JSON.stringify(model.config) } : {}),
  };
}
