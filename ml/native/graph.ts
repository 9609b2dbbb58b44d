/**
 * A TensorFlow graph built in TypeScript and run by native TensorFlow as one session call.
 *
 * tfjs-node runs every op as its own eager call (a binding round trip, a kernel lookup, a new output handle); a
 * small net's training step is tens of such calls whose dispatch costs about as much as their arithmetic. The
 * binding's only other way in is a SavedModel session, so this module writes the graph as a SavedModel
 * (`saved_model.pb` alone: no variables to restore) to a private temporary directory, loads it, and removes the
 * directory. A session then runs the whole graph per call, with TensorFlow's executor scheduling independent ops
 * on its inter-op threads and no JavaScript between kernels.
 *
 * Guarantees:
 * - the graph holds exactly the nodes the caller added, with the attributes it gave (TensorFlow's graph optimizer
 *   may still rewrite it on the first run: callers that promise bit-identical results test that they get them);
 * - the session's resources (resource variables created by VarHandleOp) live until dispose();
 * - run() hands back output handles the caller owns; the feeds stay the caller's.
 *
 * The protobuf messages are tfjs-node's own compiled TensorFlow protos (the ones it reads SavedModels with).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';

/** The binding's tensor as it reports one. */
export interface NativeTensorInfo {
  id: number;
  shape: number[];
  dtype: number;
}

/** The part of tfjs-node's binding a graph session uses. */
export interface GraphBinding {
  loadSavedModel(exportDir: string, tags: string): number;
  runSavedModel(id: number, inputIds: number[], inputNames: string, outputNames: string): NativeTensorInfo[];
  deleteSavedModel(id: number): void;
}

/** An eager op's attribute as tfjs-node passes it to the binding. */
export interface NativeOpAttr {
  name: string;
  type: number;
  value: unknown;
}

/** tfjs-node's binding as ml/ uses it (untyped across the package boundary). */
export interface NativeBinding extends GraphBinding {
  executeOp(name: string, attrs: NativeOpAttr[], inputIds: number[], numOutputs: number): NativeTensorInfo[];
  createTensor(shape: number[], dtype: number, values: ArrayLike<number>): number;
  tensorDataSync(id: number): ArrayLike<number>;
  deleteTensor(id: number): void;
  TF_FLOAT: number;
  TF_INT32: number;
  TF_BOOL: number;
  TF_ATTR_STRING: number;
  TF_ATTR_INT: number;
  TF_ATTR_FLOAT: number;
  TF_ATTR_BOOL: number;
  TF_ATTR_TYPE: number;
  TF_ATTR_SHAPE: number;
}

/** tfjs-node's backend as ml/ uses it. */
export interface NativeBackend {
  binding: NativeBinding;
  getInputTensorIds(tensors: tf.TensorInfo[]): number[];
  /** Registers a handle with the backend and the engine: a tracked tensor (typed TensorInfo in the package). */
  createOutputTensor(m: NativeTensorInfo): tf.TensorInfo;
}

/**
 * The one tfjs-node release whose internals this folder uses: the binding's calls and constants, the backend's
 * fields, the compiled TensorFlow protos. Another release may rename any of them, so with another one installed
 * nothing here is used and every step runs on the tape (nativeSupport() says why).
 */
export const PINNED_TFJS_NODE = '4.22.0';

let installedVersion: string | null | undefined;

function tfjsNodeVersion(): string | null {
  if (installedVersion === undefined) {
    try {
      const pkg = createRequire(__filename)('@tensorflow/tfjs-node/package.json') as { version?: unknown };
      installedVersion = typeof pkg.version === 'string' ? pkg.version : null;
    } catch {
      installedVersion = null;
    }
  }
  return installedVersion;
}

/**
 * Whether the current backend is native TensorFlow with the binding this folder calls: the backend, or why not.
 * Every use of tfjs-node's internals goes through this check.
 */
export function nativeSupport():
  { backend: NativeBackend; reason: null } | { backend: null; reason: string } {
  if (tf.getBackend() !== 'tensorflow')
    return { backend: null, reason: `the backend is ${tf.getBackend()}, not native TensorFlow's CPU build` };
  const version = tfjsNodeVersion();
  if (version !== PINNED_TFJS_NODE)
    return {
      backend: null,
      reason: `tfjs-node ${version ?? '(unknown)'} is not the pinned ${PINNED_TFJS_NODE}`,
    };
  const b = tf.backend() as unknown as Partial<NativeBackend>;
  return b.binding && typeof b.getInputTensorIds === 'function' && typeof b.createOutputTensor === 'function'
    ? { backend: b as NativeBackend, reason: null }
    : { backend: null, reason: "tfjs-node's backend lacks the binding calls this project uses" };
}

/** The current backend where it is native TensorFlow with the binding ml/ calls, else null. */
export function nativeBackend(): NativeBackend | null {
  return nativeSupport().backend;
}

/** TensorFlow's DataType values (types.proto). */
export const DT = { float: 1, int32: 3, bool: 10, resource: 20 } as const;

/** An attribute value, one kind at a time. */
export type Attr =
  | { type: number }
  | { b: boolean }
  | { i: number }
  | { f: number }
  | { shape: readonly number[] }
  | { s: string }
  /** A list of integers (strides, kernel sizes). */
  | { list: readonly number[] }
  /** A constant tensor of DT.float, DT.int32 or DT.bool (values as numbers, 0 for false). */
  | { tensor: { dtype: number; shape: readonly number[]; values: readonly number[] } };

/** A node's name, usable as an input (output 0); `output(name, i)` names another output. */
export type NodeName = string;
export const output = (node: NodeName, i: number): string => `${node}:${i}`;
/** An input that only orders: `node` runs before the node that lists it. */
export const after = (node: NodeName): string => `^${node}`;

// The compiled messages are plain JavaScript (google-protobuf); these are the members this module calls.
interface Msg {
  serializeBinary(): Uint8Array;
}
interface ProtoModule {
  GraphDef: new () => Msg & { addNode(n: Msg): void; setVersions(v: Msg): void };
  NodeDef: new () => Msg & {
    setName(s: string): void;
    setOp(s: string): void;
    addInput(s: string): void;
    getAttrMap(): { set(k: string, v: Msg): void };
  };
  AttrValue: (new () => Msg & {
    setType(t: number): void;
    setB(b: boolean): void;
    setI(i: number): void;
    setF(f: number): void;
    setShape(s: Msg): void;
    setS(s: Uint8Array): void;
    setTensor(t: Msg): void;
    setList(l: Msg): void;
  }) & { ListValue: new () => Msg & { setIList(v: number[]): void } };
  TensorShape: (new () => Msg & { addDim(d: Msg): void }) & {
    Dim: new () => Msg & { setSize(n: number): void };
  };
  Tensor: new () => Msg & {
    setDtype(t: number): void;
    setTensorShape(s: Msg): void;
    setFloatValList(v: number[]): void;
    setIntValList(v: number[]): void;
    setBoolValList(v: boolean[]): void;
  };
  VersionDef: new () => Msg & { setProducer(n: number): void };
  MetaGraphDef: (new () => Msg & { setMetaInfoDef(m: Msg): void; setGraphDef(g: Msg): void }) & {
    MetaInfoDef: new () => Msg & { addTags(t: string): void };
  };
  SavedModel: new () => Msg & { setSavedModelSchemaVersion(n: number): void; addMetaGraphs(m: Msg): void };
}

let protoModule: ProtoModule | null = null;
function proto(): ProtoModule {
  protoModule ??= createRequire(__filename)('@tensorflow/tfjs-node/dist/proto/api_pb') as ProtoModule;
  return protoModule;
}

/** The GraphDef version TensorFlow 2.9 writes; ops are interpreted with their current semantics. */
const GRAPH_PRODUCER = 1087;
const TAG = 'serve';

export class GraphBuilder {
  private readonly pb = proto();
  private readonly graph = new this.pb.GraphDef();
  private readonly names = new Set<string>();

  /** Adds a node; returns its name. Names must be unique. */
  node(name: string, op: string, inputs: readonly string[] = [], attrs: Record<string, Attr> = {}): NodeName {
    if (this.names.has(name)) throw new Error(`internal: graph node '${name}' added twice`);
    this.names.add(name);
    const n = new this.pb.NodeDef();
    n.setName(name);
    n.setOp(op);
    for (const i of inputs) n.addInput(i);
    const map = n.getAttrMap();
    for (const [key, a] of Object.entries(attrs)) map.set(key, this.attr(a));
    this.graph.addNode(n);
    return name;
  }

  /** A float32 scalar constant. */
  scalar(name: string, value: number): NodeName {
    return this.node(name, 'Const', [], {
      dtype: { type: DT.float },
      value: { tensor: { dtype: DT.float, shape: [], values: [value] } },
    });
  }

  /** The graph as a SavedModel file's bytes (one meta graph, tagged for loading). */
  savedModel(): Uint8Array {
    const pb = this.pb;
    const versions = new pb.VersionDef();
    versions.setProducer(GRAPH_PRODUCER);
    this.graph.setVersions(versions);
    const info = new pb.MetaGraphDef.MetaInfoDef();
    info.addTags(TAG);
    const meta = new pb.MetaGraphDef();
    meta.setMetaInfoDef(info);
    meta.setGraphDef(this.graph);
    const model = new pb.SavedModel();
    model.setSavedModelSchemaVersion(1);
    model.addMetaGraphs(meta);
    return model.serializeBinary();
  }

  private attr(a: Attr): Msg {
    const pb = this.pb;
    const v = new pb.AttrValue();
    const shape = (dims: readonly number[]) => {
      const s = new pb.TensorShape();
      for (const d of dims) {
        const dim = new pb.TensorShape.Dim();
        dim.setSize(d);
        s.addDim(dim);
      }
      return s;
    };
    if ('type' in a) v.setType(a.type);
    else if ('b' in a) v.setB(a.b);
    else if ('i' in a) v.setI(a.i);
    else if ('f' in a) v.setF(a.f);
    else if ('shape' in a) v.setShape(shape(a.shape));
    else if ('s' in a) v.setS(new TextEncoder().encode(a.s));
    else if ('list' in a) {
      const l = new pb.AttrValue.ListValue();
      l.setIList([...a.list]);
      v.setList(l);
    } else {
      const { dtype, values } = a.tensor;
      if (dtype !== DT.float && dtype !== DT.int32)
        throw new Error(`internal: graph constants of dtype ${dtype}`);
      const t = new pb.Tensor();
      t.setDtype(dtype);
      t.setTensorShape(shape(a.tensor.shape));
      if (dtype === DT.float) t.setFloatValList([...values]);
      else t.setIntValList([...values]);
      v.setTensor(t);
    }
    return v;
  }
}

/** A loaded graph: a TensorFlow session owning the graph's resources. */
export interface GraphSession {
  /** Runs what `fetches` need, with `feeds` (node name → tensor id); returns the fetched tensors, caller-owned. */
  run(feeds: ReadonlyMap<string, number>, fetches: readonly string[]): NativeTensorInfo[];
  dispose(): void;
}

export function loadGraph(binding: GraphBinding, graph: GraphBuilder): GraphSession {
  const dir = mkdtempSync(path.join(tmpdir(), 'lth-graph-'));
  let id: number;
  try {
    writeFileSync(path.join(dir, 'saved_model.pb'), graph.savedModel());
    id = binding.loadSavedModel(dir, TAG);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  let open = true;
  return {
    run(feeds, fetches) {
      if (!open) throw new Error('internal: graph session used after dispose');
      return binding.runSavedModel(id, [...feeds.values()], [...feeds.keys()].join(','), fetches.join(','));
    },
    dispose() {
      if (!open) return;
      open = false;
      binding.deleteSavedModel(id);
    },
  };
}
