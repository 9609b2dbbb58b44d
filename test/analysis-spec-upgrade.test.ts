// An analysis config written before the Hessian became exact still parses (its workflows replay their input after an
// upgrade: test/workflow-replay.test.ts), its finite-difference step dropped; the new fields take their defaults.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { analysisConfigSchema } from '../contract/analysis';

test('a pre-upgrade analysis config parses: epsilon dropped, per-layer curvature, replicates and σ on error by default', () => {
  const c = analysisConfigSchema.parse({
    options: {
      hessian: { k: 3, epsilon: 0.01 },
      trace: { samples: 50, epsilon: 0.01 },
      'pac-bayes': { samples: 4 },
    },
  });
  assert.deepEqual(c.options.hessian, { k: 3, maxIterations: 100, tol: 0.001, perLayer: true });
  assert.deepEqual(c.options.trace, { samples: 50, minSamples: 10, relativeError: 0.05, perLayer: true });
  assert.equal(c.options['pac-bayes'].on, 'error');
  assert.deepEqual(c.replicates, { seeds: 3, subsets: 2 });
  // Unknown fields are still refused, naming the field.
  assert.throws(() => analysisConfigSchema.parse({ options: { hessian: { epsilonn: 1 } } }), /epsilonn/);
  assert.throws(
    () => analysisConfigSchema.parse({ subset: { train: 40_000 }, replicates: { subsets: 2 } }),
    /must fit in the training split/,
  );
});
