/**
 * A graph built in TypeScript and run by native TensorFlow as one session call (ml/native/graph.ts): its nodes
 * compute what the same ops compute eagerly, its resource variables keep their values from one run to the next,
 * and misuse (a name twice, a run after dispose) is refused. Its own process: it loads the native backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import {
  after,
  DT,
  GraphBuilder,
  loadGraph,
  type GraphBinding,
  type NativeTensorInfo,
} from '../ml/native/graph';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

interface Backend {
  binding: GraphBinding & {
    createTensor(shape: number[], dtype: number, values: Float32Array): number;
    deleteTensor(id: number): void;
  };
  createOutputTensor(m: NativeTensorInfo): tf.TensorInfo;
}

async function nativeBackend(): Promise<Backend> {
  await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  return tf.backend() as unknown as Backend;
}

test('a graph session computes what the eager ops compute', { skip }, async () => {
  const backend = await nativeBackend();
  const g = new GraphBuilder();
  const T = { T: { type: DT.float } };
  const a = g.node('a', 'Placeholder', [], { dtype: { type: DT.float } });
  const b = g.node('b', 'Placeholder', [], { dtype: { type: DT.float } });
  const product = g.node('product', 'BatchMatMulV2', [a, b], {
    ...T,
    adj_x: { b: false },
    adj_y: { b: true },
  });
  const out = g.node('out', 'Relu', [g.node('shifted', 'AddV2', [product, g.scalar('shift', -0.25)], T)], T);
  const session = loadGraph(backend.binding, g);
  const av = tf.randomNormal([5, 7], 0, 1, 'float32', 1);
  const bv = tf.randomNormal([3, 7], 0, 1, 'float32', 2);
  const [aId, bId] = [av, bv].map(
    (t) =>
      (tf.backend() as unknown as { getInputTensorIds(t: tf.Tensor[]): number[] }).getInputTensorIds([
        t,
      ])[0] as number,
  );
  try {
    const [result] = session.run(
      new Map([
        [a, aId as number],
        [b, bId as number],
      ]),
      [out],
    );
    const got = backend.createOutputTensor(result as NativeTensorInfo) as unknown as tf.Tensor;
    const want = tf.relu(tf.add(tf.matMul(av, bv, false, true), tf.scalar(-0.25)));
    assert.deepEqual(got.shape, [5, 3]);
    assert.deepEqual(Array.from(got.dataSync()), Array.from(want.dataSync()));
    got.dispose();
    want.dispose();
  } finally {
    av.dispose();
    bv.dispose();
    session.dispose();
  }
});

test(
  "a graph session's variables keep their values between runs, and go with the session",
  { skip },
  async () => {
    const backend = await nativeBackend();
    const bind = backend.binding;
    const g = new GraphBuilder();
    const dtype = { dtype: { type: DT.float } };
    const v = g.node('v', 'VarHandleOp', [], {
      ...dtype,
      shape: { shape: [2] },
      container: { s: '' },
      shared_name: { s: 'v' },
    });
    const init = g.node(
      'init',
      'AssignVariableOp',
      [v, g.node('init_value', 'Placeholder', [], dtype)],
      dtype,
    );
    const initDone = g.node('init_done', 'Identity', [g.scalar('zero', 0), after(init)], {
      T: { type: DT.float },
    });
    const add = g.node(
      'add',
      'AssignAddVariableOp',
      [
        v,
        g.node('one', 'Const', [], {
          ...dtype,
          value: { tensor: { dtype: DT.float, shape: [2], values: [1, 1] } },
        }),
      ],
      dtype,
    );
    const read = g.node('read', 'ReadVariableOp', [v, after(add)], dtype);
    const session = loadGraph(bind, g);
    const value = bind.createTensor([2], 1, new Float32Array([10, 20]));
    const values = (infos: NativeTensorInfo[]) =>
      infos.map((m) => {
        const t = backend.createOutputTensor(m) as unknown as tf.Tensor;
        const data = Array.from(t.dataSync());
        t.dispose();
        return data;
      });
    try {
      values(session.run(new Map([['init_value', value]]), [initDone]));
      assert.deepEqual(values(session.run(new Map(), [read])), [[11, 21]]);
      assert.deepEqual(values(session.run(new Map(), [read])), [[12, 22]]);
    } finally {
      bind.deleteTensor(value);
      session.dispose();
    }
    assert.throws(() => session.run(new Map(), [read]), /after dispose/);
    session.dispose(); // twice is harmless
  },
);

test('a graph refuses a node name given twice', () => {
  const g = new GraphBuilder();
  g.scalar('x', 1);
  assert.throws(() => g.scalar('x', 2), /'x' added twice/);
});
