/**
 * A step traced once from the tape into one TensorFlow graph (ml/native/traced-step.ts): the trace hands back the
 * tape's outputs and the graph's, naming the first output whose bytes differ; what a graph cannot replay is refused
 * with a reason. The engine built on it is tested in test/ml-engines.test.ts. Its own process: it loads the native
 * backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { traceStep } from '../ml/native/traced-step';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

test(
  "a graph whose bytes differ from the tape's is still a step, and the trace names the output",
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const backend = tf.backend() as unknown as {
      binding: {
        executeOp(
          name: string,
          attrs: unknown[],
          ids: number[],
          n: number,
        ): { id: number; shape: number[]; dtype: number }[];
        TF_ATTR_INT: number;
        TF_ATTR_TYPE: number;
        TF_FLOAT: number;
        TF_INT32: number;
      };
      getInputTensorIds(t: tf.Tensor[]): number[];
      createOutputTensor(m: { id: number; shape: number[]; dtype: number }): tf.TensorInfo;
    };
    const bind = backend.binding;
    const shape = tf.tensor1d([4], 'int32');
    try {
      // TensorFlow's unseeded random op draws anew on every run: the replay cannot give the traced values.
      const trace = traceStep(new Map([['shape', shape]]), () => {
        // The binding as it is during the trace (traceStep watches it).
        const [m] = backend.binding.executeOp(
          'RandomStandardNormal',
          [
            { name: 'seed', type: bind.TF_ATTR_INT, value: 0 },
            { name: 'seed2', type: bind.TF_ATTR_INT, value: 0 },
            { name: 'dtype', type: bind.TF_ATTR_TYPE, value: bind.TF_FLOAT },
            { name: 'T', type: bind.TF_ATTR_TYPE, value: bind.TF_INT32 },
          ],
          backend.getInputTensorIds([shape]),
          1,
        );
        return new Map([['out', backend.createOutputTensor(m!) as unknown as tf.Tensor]]);
      });
      assert.ok(trace.step, trace.reason);
      assert.equal(trace.differsFromTape, 'out');
      assert.equal(trace.outputs.get('out')?.size, 4, 'the tape result is handed back');
      assert.equal(trace.graphOutputs?.get('out')?.size, 4, "and the graph's");
      tf.dispose([...trace.outputs.values(), ...(trace.graphOutputs?.values() ?? [])]);
      trace.step.dispose();
    } finally {
      shape.dispose();
    }
  },
);

test(
  'what a graph cannot replay is refused with a reason, and the tape result is kept',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const x = tf.tensor1d([1, 2, 3]);
    try {
      const readBack = traceStep(new Map([['x', x]]), () => {
        const y = tf.mul(x, 2);
        const k = y.dataSync()[0] as number; // a value the JavaScript decides on
        return new Map([['out', tf.add(y, k)]]);
      });
      assert.equal(readBack.step, null);
      assert.match(readBack.reason ?? '', /reads a value back/);
      assert.deepEqual(Array.from(readBack.outputs.get('out')!.dataSync()), [4, 6, 8]);
      tf.dispose([...readBack.outputs.values()]);

      const big = new Float32Array(1 << 17).map((_, i) => i);
      const large = traceStep(
        new Map([['x', x]]),
        () => new Map([['out', tf.add(tf.sum(x), tf.sum(tf.tensor1d(big)))]]),
      );
      assert.equal(large.step, null);
      assert.match(large.reason ?? '', /too large to inline/);
      tf.dispose([...large.outputs.values()]);

      // An op whose type attribute eager TensorFlow infers from its input but a graph must be given.
      const native = tf.backend() as unknown as {
        binding: {
          executeOp(
            n: string,
            a: unknown[],
            ids: number[],
            k: number,
          ): { id: number; shape: number[]; dtype: number }[];
        };
        getInputTensorIds(t: tf.Tensor[]): number[];
        createOutputTensor(m: { id: number; shape: number[]; dtype: number }): tf.TensorInfo;
      };
      const refused = traceStep(new Map([['x', x]]), () => {
        const [m] = native.binding.executeOp('Relu', [], native.getInputTensorIds([x]), 1);
        return new Map([['out', native.createOutputTensor(m!) as unknown as tf.Tensor]]);
      });
      assert.equal(refused.step, null);
      assert.match(refused.reason ?? '', /TensorFlow refused the graph: .*'T'/);
      assert.deepEqual(Array.from(refused.outputs.get('out')!.dataSync()), [1, 2, 3]);
      tf.dispose([...refused.outputs.values()]);

      // Zeros of any size are a Fill, so they do not stop a trace; the replay computes the same values.
      const zeros = traceStep(
        new Map([['x', x]]),
        () => new Map([['out', tf.add(x, tf.sum(tf.zeros([1 << 17])))]]),
      );
      assert.ok(zeros.step, zeros.reason);
      const again = zeros.step.run(new Map([['x', x]]));
      assert.deepEqual(Array.from(again.get('out')!.dataSync()), [1, 2, 3]);
      assert.equal(zeros.differsFromTape, null);
      tf.dispose([...again.values(), ...zeros.outputs.values(), ...(zeros.graphOutputs?.values() ?? [])]);
      zeros.step.dispose();
    } finally {
      x.dispose();
    }
  },
);
