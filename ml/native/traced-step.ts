/**
 * A training step recorded once from the tape and replayed as one TensorFlow graph session.
 *
 * The tape spends ~20 µs of JavaScript per op (engine, scopes, saved-tensor copies); for the conv nets and the
 * teachers that is a tenth to a fifth of a step (bench/profile.ts). Tracing runs one tape step with tfjs-node's
 * binding watched: every kernel it calls becomes a graph node with the same attributes and operands, every value it
 * uploads a constant (integers written into the graph; floats uploaded once and fed, since TensorFlow's constant
 * folding would regroup arithmetic with known floats and round differently; zeros and ones of any size a Fill), and
 * the step's inputs (parameters, slots, masks, the batch) placeholders. The graph then runs as one session call per
 * step (ml/native/graph.ts), with no JavaScript between kernels, independent kernels side by side on the inter-op
 * pool. TensorFlow's graph optimizer still runs and may regroup arithmetic (a chain of adds into one AddN, as in
 * the involution net's sum over taps), so a graph's bytes may differ from the tape's: a graph is its own engine
 * (ml/train/engines/graph.ts), which computes every step of a run from its graph, the traced one included.
 *
 * Guarantees:
 * - the trace is checked by running it: right after the trace, the graph runs on the traced step's inputs; its
 *   outputs are returned (`graphOutputs`) beside the tape's, with the first output whose bytes differ from the
 *   tape's named (`differsFromTape`, null where every output is the tape's to the byte);
 * - tracing gives up (no step, a reason) on what a graph cannot replay: a value read back to JavaScript during the
 *   step, a tensor input it was not told about that is too large to inline, an attribute kind it does not know;
 * - callers trace only steps whose uploaded values do not depend on the step number (a constant learning rate, no
 *   noise drawn in the forward pass): the graph replays the traced constants forever. The engine selection decides
 *   that (ml/train/engines/), and traces once per batch size, since shapes are part of a graph;
 * - the outputs run() returns are new tensors the caller owns; the inputs stay the caller's.
 */
import * as tf from '@tensorflow/tfjs-core';

import { hostBytesEqual } from '../host-tensor.js';
import {
  DT,
  GraphBuilder,
  loadGraph,
  nativeBackend,
  output,
  type Attr,
  type GraphSession,
  type NativeBackend,
  type NativeBinding,
  type NativeOpAttr,
} from './graph.js';
import { toHost } from '../tensors.js';

type Named = ReadonlyMap<string, tf.Tensor>;

export interface TracedStep {
  /** Runs the step on these inputs (the names it was traced with); returns its outputs, which the caller owns. */
  run(inputs: Named): Map<string, tf.Tensor>;
  dispose(): void;
}

export interface Trace {
  /** The tape's outputs of the traced step (the caller's, as if it had run the tape itself). */
  outputs: Map<string, tf.Tensor>;
  /** The replayable step, or null where the step cannot be a graph. */
  step: TracedStep | null;
  /** The graph's outputs on the traced step's inputs (the caller's), where there is a step. */
  graphOutputs?: Map<string, tf.Tensor>;
  /** The first output whose bytes differ between the graph and the tape, or null; absent without a step. */
  differsFromTape?: string | null;
  /** Why there is no step. */
  reason?: string;
}

/** Uploaded values larger than this (elements) are not inlined as constants: the step gives up instead. */
const MAX_INLINE = 1 << 16;

class TraceError extends Error {}

type Event =
  | { kind: 'op'; name: string; attrs: NativeOpAttr[]; inputs: number[]; outputs: number[] }
  | { kind: 'upload'; id: number; shape: number[]; dtype: number; values: Inlined | null };

/** An uploaded value as the graph can hold it: all elements one number (a Fill), or a small constant. */
type Inlined = { fill: number } | { values: number[] };

/** A value the graph takes as a feed: uploaded once when the step is made, fed to every run. */
interface FedConstant {
  node: string;
  shape: number[];
  dtype: number;
  values: number[];
}

function inlinable(values: ArrayLike<number>): Inlined | null {
  const first = values[0];
  let uniform = true;
  for (let i = 1; i < values.length && uniform; i++) uniform = Object.is(values[i], first);
  if (uniform && first !== undefined) return { fill: first };
  return values.length <= MAX_INLINE ? { values: Array.from(values, Number) } : null;
}

/** Whether this process can trace steps (native TensorFlow with the binding this module needs). */
export function canTrace(): boolean {
  return nativeBackend() !== null;
}

/**
 * Runs `body` (one tape step of these named inputs, returning its named outputs) with the binding watched, and
 * turns what it ran into a graph. The inputs must already be on the device in the sense of tfjs-node (the caller
 * hands them over; this uploads any that are not).
 */
export function traceStep(inputs: Named, body: () => Map<string, tf.Tensor>): Trace {
  const backend = nativeBackend();
  if (!backend) return { outputs: body(), step: null, reason: 'not on native TensorFlow' };
  const real = backend.binding;
  const inputIds = new Map<number, string>();
  const inputDtypes = new Map<number, number>();
  const inputShapes = new Map<number, number[]>();
  for (const [name, t] of inputs) {
    const id = backend.getInputTensorIds([t])[0] as number;
    inputIds.set(id, name);
    inputDtypes.set(id, dtypeOf(t));
    inputShapes.set(id, [...t.shape]);
  }
  // The shape and dtype of every tensor an op reads, as tfjs hands it to the binding.
  const seen = new Map<number, { shape: number[]; dtype: number }>();
  const ownIds = backend.getInputTensorIds;
  const ownDescriptor = Object.getOwnPropertyDescriptor(backend, 'getInputTensorIds');

  const events: Event[] = [];
  let readBack = false;
  const watched = Object.create(real) as NativeBinding;
  Object.defineProperties(watched, {
    executeOp: {
      value: (name: string, attrs: NativeOpAttr[], ids: number[], n: number) => {
        const out = real.executeOp(name, attrs, ids, n);
        events.push({ kind: 'op', name, attrs, inputs: [...ids], outputs: out.map((m) => m.id) });
        return out;
      },
    },
    createTensor: {
      value: (shape: number[], dtype: number, values: ArrayLike<number>) => {
        const id = real.createTensor(shape, dtype, values);
        events.push({ kind: 'upload', id, shape: [...shape], dtype, values: inlinable(values) });
        return id;
      },
    },
    tensorDataSync: {
      value: (id: number) => {
        readBack = true;
        return real.tensorDataSync(id);
      },
    },
  });
  backend.binding = watched;
  backend.getInputTensorIds = (tensors: tf.Tensor[]) => {
    const ids = ownIds.call(backend, tensors);
    tensors.forEach((t, i) =>
      seen.set(ids[i] as number, { shape: [...t.shape], dtype: DTYPES[t.dtype] ?? -1 }),
    );
    return ids;
  };
  let outputs: Map<string, tf.Tensor>;
  try {
    outputs = body();
  } finally {
    backend.binding = real;
    if (ownDescriptor) Object.defineProperty(backend, 'getInputTensorIds', ownDescriptor);
    else delete (backend as Partial<NativeBackend>).getInputTensorIds;
  }
  if (readBack) return { outputs, step: null, reason: 'the step reads a value back to JavaScript' };

  let session: GraphSession | null = null;
  try {
    const fetches = new Map<string, string>();
    const fed: FedConstant[] = [];
    const graph = buildGraph(
      backend,
      events,
      inputIds,
      inputDtypes,
      inputShapes,
      seen,
      outputs,
      fetches,
      fed,
    );
    try {
      session = loadGraph(real, graph);
    } catch (e) {
      throw new TraceError(`TensorFlow refused the graph: ${e instanceof Error ? e.message : String(e)}`);
    }
    const step = replayer(backend, session, inputIds, fetches, fed);
    // The check: the graph runs, on the traced step's inputs, and its bytes are compared with the tape's.
    let again: Map<string, tf.Tensor>;
    try {
      again = step.run(inputs);
    } catch (e) {
      step.dispose();
      session = null;
      throw new TraceError(
        `TensorFlow could not run the graph: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    let differsFromTape: string | null = null;
    for (const [name, want] of outputs) {
      const got = again.get(name);
      if (!got) {
        tf.dispose([...again.values()]);
        step.dispose();
        session = null;
        throw new TraceError(`the graph has no output '${name}'`);
      }
      if (differsFromTape === null && !hostBytesEqual(toHost(got), toHost(want))) differsFromTape = name;
    }
    return { outputs, step, graphOutputs: again, differsFromTape };
  } catch (e) {
    session?.dispose();
    if (e instanceof TraceError) return { outputs, step: null, reason: e.message };
    throw e;
  }
}

function buildGraph(
  backend: NativeBackend,
  events: Event[],
  inputIds: ReadonlyMap<number, string>,
  inputDtypes: ReadonlyMap<number, number>,
  inputShapes: ReadonlyMap<number, number[]>,
  seen: ReadonlyMap<number, { shape: number[]; dtype: number }>,
  outputs: ReadonlyMap<string, tf.Tensor>,
  fetches: Map<string, string>,
  fed: FedConstant[],
): GraphBuilder {
  const bind = backend.binding;
  const g = new GraphBuilder();
  // Where each tensor id of the trace comes from in the graph.
  const source = new Map<number, string>();
  for (const [id, name] of inputIds) {
    source.set(
      id,
      // With its shape: TensorFlow's optimizer and cost model know every tensor's shape (a graph has fixed shapes).
      g.node(placeholderName(name), 'Placeholder', [], {
        dtype: { type: inputDtypes.get(id) as number },
        shape: { shape: inputShapes.get(id) as number[] },
      }),
    );
  }
  let constants = 0;
  // dt: TensorFlow's DataType (the binding's TF_FLOAT etc. are the same numbers).
  const constant = (shape: number[], dt: number, v: Inlined | null): string => {
    const size = shape.reduce((a, b) => a * b, 1);
    if (v === null) throw new TraceError(`a tensor of ${size} elements is too large to inline`);
    if (dt !== DT.float && dt !== DT.int32 && dt !== DT.bool) throw new TraceError(`a tensor of dtype ${dt}`);
    const name = `const/${constants++}`;
    // Float values are fed, not written into the graph: TensorFlow's constant folding would otherwise regroup
    // arithmetic with them (c1·(c2·x) → (c1·c2)·x), which rounds differently from the tape. Integers (shapes,
    // axes, permutations) stay constants, which shape inference wants.
    const feed = (node: string, feedShape: number[], values: number[]) => {
      fed.push({ node, shape: feedShape, dtype: dt, values });
      return g.node(node, 'Placeholder', [], { dtype: { type: dt }, shape: { shape: feedShape } });
    };
    // Integers are written out in full where small (shape inference reads them), uniform or not.
    const exact: Inlined =
      dt === DT.int32 && 'fill' in v && size <= MAX_INLINE
        ? { values: new Array<number>(size).fill(v.fill) }
        : v;
    if ('values' in exact)
      return dt === DT.int32
        ? g.node(name, 'Const', [], {
            dtype: { type: dt },
            value: { tensor: { dtype: dt, shape, values: exact.values } },
          })
        : feed(name, shape, exact.values);
    // A uniform tensor (zeros, ones) of any size: its one value filled out to the shape.
    const dims = g.node(`${name}/dims`, 'Const', [], {
      dtype: { type: DT.int32 },
      value: { tensor: { dtype: DT.int32, shape: [shape.length], values: shape } },
    });
    const value =
      dt === DT.int32
        ? g.node(`${name}/value`, 'Const', [], {
            dtype: { type: dt },
            value: { tensor: { dtype: dt, shape: [], values: [exact.fill] } },
          })
        : feed(`${name}/value`, [], [exact.fill]);
    return g.node(name, 'Fill', [dims, value], {
      T: { type: dt },
      index_type: { type: DT.int32 },
    });
  };
  let ops = 0;
  for (const e of events) {
    if (e.kind === 'upload') {
      // An upload of a traced input (a lazily written tensor) is that input.
      if (!inputIds.has(e.id)) source.set(e.id, constant(e.shape, e.dtype, e.values));
      continue;
    }
    const ins = e.inputs.map((id) => {
      const s = source.get(id);
      if (s !== undefined) return s;
      // A tensor made before the step and not named as an input (a cached constant): inline its value.
      const info = seen.get(id);
      if (!info) throw new TraceError(`op ${e.name} reads a tensor the trace does not know`);
      const c = constant(info.shape, info.dtype, inlinable(bind.tensorDataSync(id)));
      source.set(id, c);
      return c;
    });
    const name = g.node(`op/${ops++}/${e.name}`, e.name, ins, convertAttrs(bind, e.name, e.attrs));
    e.outputs.forEach((id, i) => source.set(id, output(name, i)));
  }
  for (const [name, t] of outputs) {
    const id = backend.getInputTensorIds([t])[0] as number;
    const s = source.get(id);
    if (s === undefined) throw new TraceError(`the step's output '${name}' was not made by a traced op`);
    // Identity gives every fetch a node of its own (an output may also be an input or another output).
    fetches.set(name, g.node(`fetch/${name}`, 'Identity', [s], { T: { type: dtypeOf(t) } }));
  }
  return g;
}

/** TensorFlow's DataType of the tfjs dtypes a graph here can carry. */
const DTYPES: Partial<Record<string, number>> = { float32: DT.float, int32: DT.int32, bool: DT.bool };

function dtypeOf(t: tf.Tensor): number {
  const dt = DTYPES[t.dtype];
  if (dt === undefined) throw new TraceError(`a step tensor of dtype ${t.dtype}`);
  return dt;
}

const placeholderName = (input: string) => `input/${input.replace(/[^A-Za-z0-9_./-]/g, '_')}`;

function convertAttrs(bind: NativeBinding, op: string, attrs: NativeOpAttr[]): Record<string, Attr> {
  const out: Record<string, Attr> = {};
  for (const a of attrs) {
    const v = a.value;
    if (a.type === bind.TF_ATTR_STRING && typeof v === 'string') out[a.name] = { s: v };
    else if (a.type === bind.TF_ATTR_BOOL && typeof v === 'boolean') out[a.name] = { b: v };
    else if (a.type === bind.TF_ATTR_TYPE && typeof v === 'number') out[a.name] = { type: v };
    else if (a.type === bind.TF_ATTR_INT && typeof v === 'number') out[a.name] = { i: v };
    else if (a.type === bind.TF_ATTR_INT && Array.isArray(v)) out[a.name] = { list: v as number[] };
    else if (a.type === bind.TF_ATTR_FLOAT && typeof v === 'number') out[a.name] = { f: v };
    else if (a.type === bind.TF_ATTR_SHAPE && Array.isArray(v)) out[a.name] = { shape: v as number[] };
    else throw new TraceError(`op ${op}: attribute '${a.name}' of a kind the trace does not handle`);
  }
  return out;
}

function replayer(
  backend: NativeBackend,
  session: GraphSession,
  inputIds: ReadonlyMap<number, string>,
  fetches: ReadonlyMap<string, string>,
  fed: readonly FedConstant[],
): TracedStep {
  const bind = backend.binding;
  const constants = new Map<string, number>();
  for (const c of fed) {
    const values =
      c.dtype === DT.float
        ? Float32Array.from(c.values)
        : c.dtype === DT.int32
          ? Int32Array.from(c.values)
          : Uint8Array.from(c.values);
    constants.set(c.node, bind.createTensor(c.shape, c.dtype, values));
  }
  const inputNames = [...inputIds.values()];
  const fetchNames = [...fetches.keys()];
  const fetchNodes = fetchNames.map((n) => fetches.get(n) as string);
  return {
    run(inputs) {
      const feeds = new Map<string, number>(constants);
      for (const name of inputNames) {
        const t = inputs.get(name);
        if (!t) throw new Error(`internal: the traced step needs input '${name}'`);
        feeds.set(placeholderName(name), backend.getInputTensorIds([t])[0] as number);
      }
      const out = session.run(feeds, fetchNodes);
      return new Map(
        out.map((m, i) => [fetchNames[i] as string, backend.createOutputTensor(m) as unknown as tf.Tensor]),
      );
    },
    dispose() {
      session.dispose();
      for (const id of constants.values()) bind.deleteTensor(id);
      constants.clear();
    },
  };
}
