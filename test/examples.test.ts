// Every spec under examples/ is valid for the command its comments name, and every precompute example names a
// teacher that an example trains: examples are what a new user runs first, so they must not rot.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { readSpecFile } from '../cli/spec-file';
import { analysisConfigSchema } from '../contract/analysis';
import { parseDistillSpec } from '../contract/distill';
import { parsePrecomputeSpec } from '../contract/precompute';
import { recogniseSpecKind, SPEC_KINDS } from '../contract/spec-kinds';
import { parseSweepSpec } from '../contract/sweep';
import { validateSweep } from '../contract/sweep-trials';
import { parseTrainSpec } from '../contract/train';
import { REPO_ROOT } from '../infra/paths';
import { specFiles } from './support/identities';

const EXAMPLES = path.join(REPO_ROOT, 'examples');

/** Which spec kind an example is, from its shape (contract/spec-kinds). */
function kindOf(spec: Record<string, unknown>): string {
  const kind = recogniseSpecKind(spec);
  assert.ok(kind, `no spec kind recognises ${JSON.stringify(spec).slice(0, 80)}`);
  return kind.kind;
}

// examples/analysis/ holds analysis configs (`lth analyze --config`), not specs of a run kind: checked below.
const ANALYSIS = path.join(EXAMPLES, 'analysis');
// examples/sweeps/ holds sweeps (`lth sweep --config`) over specs of the kinds: checked below.
const SWEEPS = path.join(EXAMPLES, 'sweeps');
const files = specFiles(EXAMPLES).filter(
  (f) => !f.startsWith(ANALYSIS + path.sep) && !f.startsWith(SWEEPS + path.sep),
);

test('every sweep example is valid through to each trial, and its commands name itself', () => {
  const sweeps = specFiles(SWEEPS);
  assert.ok(sweeps.length >= 1);
  for (const f of sweeps) {
    validateSweep(parseSweepSpec(readSpecFile(f)));
    for (const m of fs.readFileSync(f, 'utf8').matchAll(/--config ([\w./-]+)/g))
      assert.ok(fs.existsSync(path.join(REPO_ROOT, m[1] as string)), `${f} mentions missing ${m[1]}`);
  }
});

test('every analysis config example is valid, and the default one is exactly the defaults', () => {
  const configs = specFiles(ANALYSIS);
  assert.ok(configs.length >= 1);
  for (const f of configs) analysisConfigSchema.parse(readSpecFile(f));
  assert.deepEqual(
    analysisConfigSchema.parse(readSpecFile(path.join(ANALYSIS, 'default.yaml'))),
    analysisConfigSchema.parse({}),
  );
});

test('there are examples of every kind of spec', () => {
  const kinds = new Set(files.map((f) => kindOf(readSpecFile(f))));
  assert.deepEqual([...kinds].sort(), SPEC_KINDS.map((k) => k.kind).sort());
});

for (const file of files) {
  const name = path.relative(REPO_ROOT, file);
  test(`${name} is a valid spec`, () => {
    const spec = readSpecFile(file);
    recogniseSpecKind(spec)?.parse(spec);
    assert.ok(recogniseSpecKind(spec), name);
    // The commands in its comments point at this very file (a moved example keeps working instructions).
    for (const m of fs.readFileSync(file, 'utf8').matchAll(/--config ([\w./-]+)/g)) {
      assert.ok(fs.existsSync(path.join(REPO_ROOT, m[1] as string)), `${name} mentions missing ${m[1]}`);
    }
  });
}

test("every precompute example's teacher is trained by a train example", () => {
  const trained = files
    .map((f) => readSpecFile(f))
    .filter((s) => kindOf(s) === 'train')
    .map((s) => parseTrainSpec(s).train);
  const precomputes = files.filter((f) => kindOf(readSpecFile(f)) === 'precompute');
  assert.ok(precomputes.length >= 2, 'both teachers have a precompute example');
  for (const f of precomputes) {
    const { teacher } = parsePrecomputeSpec(readSpecFile(f));
    assert.ok(
      trained.some((t) => JSON.stringify(t) === JSON.stringify(teacher.train)),
      `${path.relative(REPO_ROOT, f)}: teacher.train matches no train example's train section`,
    );
  }
});

test("every distill example's teachers are trained by train examples, so their runs and logit sets are shared", () => {
  const trained = files
    .map((f) => readSpecFile(f))
    .filter((s) => kindOf(s) === 'train')
    .map((s) => JSON.stringify(parseTrainSpec(s).train));
  const distills = files.filter((f) => kindOf(readSpecFile(f)) === 'distill');
  assert.ok(distills.length >= 6, 'one example per variant');
  for (const f of distills) {
    for (const t of parseDistillSpec(readSpecFile(f)).teachers) {
      if ('train' in t) {
        assert.ok(
          trained.includes(JSON.stringify(t.train)),
          `${path.relative(REPO_ROOT, f)}: teacher ${t.name}`,
        );
      }
    }
  }
});
