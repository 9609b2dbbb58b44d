// Which worker can recompute a damaged object to its bytes (activities/heal.ts): the backend a label names, native
// TensorFlow's thread count (its reductions are split by it) and the engine family; a run resumed across backends
// cannot be recomputed by anyone.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  labelWithEngine,
  parseBackendLabel,
  requireReproducible,
  reproducibleOn,
  UnderivableError,
} from '../activities/heal';

test('a backend label names backend, threads and engine family, one segment per backend', () => {
  assert.deepEqual(parseBackendLabel('tensorflow/2t/graph'), [
    { name: 'tensorflow', threads: 2, engine: 'graph' },
  ]);
  assert.deepEqual(parseBackendLabel('wasm/4t+tensorflow'), [
    { name: 'wasm', threads: 4, engine: 'tape' },
    { name: 'tensorflow', threads: null, engine: 'tape' },
  ]);
  assert.equal(labelWithEngine('tensorflow/1t', 'graph'), 'tensorflow/1t/graph');
  assert.equal(
    labelWithEngine('tensorflow/1t', undefined),
    'tensorflow/1t',
    "the tape's labels are as before",
  );
});

test('what a worker can recompute to the same bytes', () => {
  assert.equal(reproducibleOn('tensorflow/2t', 'tensorflow/2t'), true);
  assert.equal(reproducibleOn('tensorflow/2t/graph', 'tensorflow/2t'), true);
  assert.equal(
    reproducibleOn('tensorflow/1t', 'tensorflow/2t'),
    false,
    "native TensorFlow's bytes depend on threads",
  );
  assert.equal(reproducibleOn('tensorflow/1t/graph', 'tensorflow/2t'), false);
  assert.equal(reproducibleOn('wasm/1t', 'wasm/2t'), true, "WASM's do not");
  assert.equal(reproducibleOn('tensorflow/2t/graph', 'wasm/2t'), false);
  assert.equal(reproducibleOn('cpu+wasm/2t', 'wasm/2t'), false, 'a run resumed across backends: nobody');
  assert.throws(
    () => requireReproducible('trunk level 1 of L', 'k', 'tensorflow/1t/graph', 'tensorflow/2t'),
    (e: unknown) =>
      e instanceof UnderivableError &&
      /computed on tensorflow\/1t\/graph and this worker runs tensorflow\/2t/.test(e.message) &&
      e.next.includes('`lth worker compute --backend tensorflow --threads 1`'),
  );
});
