// `lth status` and `lth report` group distillation runs by variant: runs that learn differently must never share a
// name (a feature term, dropout or drop-path is part of it), and runs that differ only by seed always do.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import { distillSpecFromFlags } from '../cli/commands/distill';
import { REPO_ROOT } from '../infra/paths';
import { distillVariant } from '../report/distill';

const example = (name: string) => path.join(REPO_ROOT, 'examples/distill', name);

test('a distillation variant names its mode, teachers, τ, feature term and regularisation, never its seed', () => {
  const variant = (file: string, flags: Parameters<typeof distillSpecFromFlags>[0] = {}) =>
    distillVariant(distillSpecFromFlags({ config: example(file), ...flags }));
  assert.equal(variant('student.yaml'), 'student');
  assert.equal(variant('cnn.yaml'), 'tokens(cnn)');
  assert.equal(variant('cnn.yaml', { seed: 4 }), 'tokens(cnn)');
  assert.equal(variant('both-tokens.yaml', { temperature: 2 }), 'tokens(cnn+involution, τ=2)');
  assert.equal(variant('cnn-features.yaml'), 'tokens(cnn) +features(cnn)');
  assert.equal(variant('cnn-features.yaml', { featureWeight: 0.5 }), 'tokens(cnn) +features(cnn, w=0.5)');
  assert.equal(variant('deit-hard.yaml'), 'deit-hard(cnn)');
  const regularised = distillSpecFromFlags({ config: example('cnn.yaml') });
  assert.equal(
    distillVariant({ ...regularised, student: { dropout: 0.1, dropPath: 0.2 } }),
    'tokens(cnn) [dropout=0.1, drop-path=0.2]',
  );
  assert.equal(
    distillVariant({
      ...regularised,
      teachers: [],
      kd: { ...regularised.kd, mode: 'none' },
      student: { dropPath: 0.1 },
    }),
    'student [drop-path=0.1]',
  );
});
