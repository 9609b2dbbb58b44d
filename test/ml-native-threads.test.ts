// LTH_THREADS / the threads option sizes native TensorFlow's intra-op and inter-op pools (TF_NUM_INTRAOP_THREADS,
// TF_NUM_INTEROP_THREADS), once per process: a later request for another size is refused rather than silently
// ignored. Own file: the pools are fixed when the first TensorFlow context is created in this process.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as tf from '@tensorflow/tfjs-core';

import { BackendUnavailableError, selectBackend } from '../ml/backend';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

test('native backend takes its thread counts from the threads option', { skip }, async () => {
  const info = await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  assert.equal(info.name, 'tensorflow');
  assert.equal(info.threads, 1);
  assert.equal(process.env.TF_NUM_INTRAOP_THREADS, '1');
  // And the inter-op pool, on which graph sessions (ml/native/graph.ts) run independent kernels side by side.
  assert.equal(process.env.TF_NUM_INTEROP_THREADS, '1');
  // It computes: a small matMul on the single-thread pool.
  const y = tf.matMul(tf.ones([4, 3]), tf.ones([3, 2]));
  assert.deepEqual(Array.from(await y.data()), [3, 3, 3, 3, 3, 3, 3, 3]);

  const same = await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  assert.equal(same.threads, 1);
  await assert.rejects(
    selectBackend({ prefer: 'tensorflow', threads: 2, log: () => {} }),
    (e: unknown) => e instanceof BackendUnavailableError && /threads=1/.test(e.message),
  );
});
