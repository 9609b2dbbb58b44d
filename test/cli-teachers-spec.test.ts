// How `lth teachers precompute` builds its spec from files and flags, without services: the teacher named by its
// own training spec (--teacher-config), flags over the file field by field, and errors that name the field.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { precomputeSpecFromFlags } from '../cli/commands/teachers';
import { readSpecFile } from '../cli/spec-file';
import { REPO_ROOT } from '../infra/paths';
import { parsePrecomputeSpec } from '../contract/precompute';

const example = (name: string) => path.join(REPO_ROOT, 'examples', 'teachers', name);
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-teachers-spec-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

test('--teacher-config alone gives the same spec as the written-out precompute example', () => {
  const fromFlags = precomputeSpecFromFlags({ teacherConfig: example('involution-mnist.yaml') });
  const written = parsePrecomputeSpec(readSpecFile(example('precompute-involution-mnist.yaml')));
  assert.deepEqual(fromFlags, written);
  assert.equal(fromFlags.teacher.name, 'involution-teacher-mnist');
  assert.equal(fromFlags.experiment, 'teachers-mnist');
});

test("--teacher-config replaces a spec file's teacher.train and keeps its name and other fields", () => {
  const spec = precomputeSpecFromFlags({
    config: example('precompute-mnist.yaml'),
    teacherConfig: example('involution-mnist.yaml'),
    format: 'top-k',
    k: 3,
    experiment: 'other',
  });
  assert.equal(spec.teacher.name, 'mnist-teacher');
  assert.equal(spec.teacher.train.model, 'involution-teacher');
  assert.equal(spec.format, 'top-k');
  assert.equal(spec.k, 3);
  assert.equal(spec.experiment, 'other');
});

test('a bad teacher training spec fails naming its field', () => {
  const bad = path.join(tmp, 'bad-teacher.yaml');
  fs.writeFileSync(bad, 'train: { model: no-such-model, dataset: mnist, epochs: 1 }\n');
  assert.throws(() => precomputeSpecFromFlags({ teacherConfig: bad }), /train\.model/);
  assert.throws(
    () => precomputeSpecFromFlags({ teacherConfig: path.join(tmp, 'missing.yaml') }),
    /cannot read config .*missing\.yaml/,
  );
});

test('without a teacher the spec fails naming teacher', () => {
  assert.throws(() => precomputeSpecFromFlags({ format: 'float32' }), /teacher/);
});
