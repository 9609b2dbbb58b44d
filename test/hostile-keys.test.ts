// Names from user input cannot escape their prefix in the store: experiment, sweep, teacher and schedule names and
// stored-set keys in specs are refused at validation naming the field, and the key builders (store/keys.ts) and
// checkKey refuse traversal, absolute paths, separators, control characters, empty segments and long names again.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { parseScheduleOptions } from '../cli/commands/schedule';
import { parseExperimentName } from '../cli/experiments';
import { parseDistillSpec } from '../contract/distill';
import { parseLotterySpec } from '../contract/lottery';
import { parsePrecomputeSpec } from '../contract/precompute';
import { SpecError } from '../contract/spec';
import { parseSweepSpec } from '../contract/sweep';
import { parseTrainSpec } from '../contract/train';
import { checkKey } from '../store/artifact-store';
import { StoreUsageError } from '../store/errors';
import {
  analysisKey,
  checkpointKey,
  experimentKey,
  experimentReportKey,
  levelTensorKey,
  logitManifestKey,
  logitShardKey,
  runManifestKey,
} from '../store/keys';
import { example, hostileName, HOSTILE_NAMES, namesField } from './hostile-support';

const RUNS = 200;
let tried = 0;

/** A key that stays where it was put: no dot or empty segments, no control characters, backslashes or halves of pairs. */
function safeKey(key: string): boolean {
  return (
    key.length > 0 &&
    // eslint-disable-next-line no-control-regex
    !/[\u0000-\u001f\u007f-\u009f\\]/.test(key) &&
    !/[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/.test(key) &&
    key.split('/').every((p) => p !== '' && p !== '.' && p !== '..')
  );
}

const unsafe = (name: string) => !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(name);

function refusedNaming(parse: () => unknown, field: string, what: string): void {
  tried++;
  try {
    parse();
  } catch (e) {
    assert.ok(e instanceof SpecError, `${what}: ${String(e)}`);
    assert.ok(
      e.issues.some((l) => namesField(l, field)),
      `${what}: no line names ${field}:\n  ${e.issues.join('\n  ')}`,
    );
    return;
  }
  assert.fail(`${what}: accepted`);
}

const train = example('lenet-mnist.yaml');
const lottery = example('lottery-lenet-mnist.yaml');
const precompute = example('teachers/precompute-mnist.yaml');
const distill = example('distill/both-tokens.yaml');
const sweep = example('sweeps/lottery-lenet-rewind-fraction.yaml');

const nameFields: { what: string; field: string; parse: (name: string) => unknown }[] = [
  {
    what: 'train experiment',
    field: 'experiment',
    parse: (n) => parseTrainSpec({ ...train, experiment: n }),
  },
  {
    what: 'lottery experiment',
    field: 'experiment',
    parse: (n) => parseLotterySpec({ ...lottery, experiment: n }),
  },
  {
    what: 'teacher name',
    field: 'teacher.name',
    parse: (n) =>
      parsePrecomputeSpec({ ...precompute, teacher: { ...(precompute.teacher as object), name: n } }),
  },
  {
    what: 'distill teacher name',
    field: 'teachers.0.name',
    parse: (n) =>
      parseDistillSpec({
        ...distill,
        teachers: [{ ...(distill.teachers as object[])[0], name: n }, (distill.teachers as object[])[1]],
      }),
  },
  {
    what: 'distill stored set key',
    field: 'teachers.0.logits',
    parse: (n) =>
      parseDistillSpec({
        ...distill,
        teachers: [{ name: 'a', logits: n }, (distill.teachers as object[])[1]],
      }),
  },
  { what: 'sweep name', field: 'sweep', parse: (n) => parseSweepSpec({ ...sweep, sweep: n }) },
  { what: 'schedule id', field: 'id', parse: (n) => parseScheduleOptions({ id: n, every: '1h' }) },
];

for (const f of nameFields) {
  test(`${f.what}: hostile names are refused at validation, naming ${f.field}`, () => {
    const key = f.field.endsWith('logits');
    for (const n of HOSTILE_NAMES)
      if (key ? !safeKey(n) : unsafe(n)) refusedNaming(() => f.parse(n), f.field, JSON.stringify(n));
    fc.assert(
      fc.property(hostileName, (n) => {
        fc.pre(key ? !safeKey(n) : unsafe(n));
        refusedNaming(() => f.parse(n), f.field, JSON.stringify(n));
      }),
      { numRuns: RUNS, seed: 11 },
    );
  });
}

test('a stored-set key that checkKey refuses is never accepted by the spec (the two rules agree)', () => {
  fc.assert(
    fc.property(
      fc.oneof(
        hostileName,
        fc.string({ maxLength: 30 }),
        fc.string({ unit: 'binary', maxLength: 10 }),
        fc.constantFrom('é'.repeat(513), 'a'.repeat(1024), 'a'.repeat(1025), `a/${'€'.repeat(340)}`),
      ),
      (k) => {
        tried++;
        let storeOk = true;
        try {
          checkKey(k);
        } catch (e) {
          assert.ok(e instanceof StoreUsageError, String(e));
          storeOk = false;
        }
        const specOk = (() => {
          try {
            parseDistillSpec({
              ...distill,
              teachers: [{ name: 'a', logits: k }, (distill.teachers as object[])[1]],
            });
            return true;
          } catch (e) {
            assert.ok(e instanceof SpecError, String(e));
            return false;
          }
        })();
        assert.equal(specOk, storeOk, `key ${JSON.stringify(k)}: spec ${specOk}, store ${storeOk}`);
      },
    ),
    { numRuns: RUNS, seed: 12 },
  );
});

test('checkKey: any string is refused with a StoreUsageError or is a key that stays under its prefix', () => {
  fc.assert(
    fc.property(
      fc.oneof(hostileName, fc.string({ unit: 'binary', maxLength: 40 }), fc.string({ maxLength: 1100 })),
      (k) => {
        tried++;
        try {
          assert.equal(checkKey(k), k);
        } catch (e) {
          assert.ok(e instanceof StoreUsageError, String(e));
          return;
        }
        assert.ok(safeKey(k) && Buffer.byteLength(k) <= 1024, `checkKey accepted ${JSON.stringify(k)}`);
      },
    ),
    { numRuns: RUNS, seed: 13 },
  );
});

test('store/keys.ts: every builder refuses hostile parts or builds a key under its own prefix that checkKey accepts', () => {
  const builders: [string, (s: string) => string][] = [
    ['experiments/', (s) => experimentKey(s, 'manifest.json')],
    ['experiments/', (s) => experimentKey('lineage', s)],
    ['experiments/', (s) => levelTensorKey(s, 1, 'weights')],
    ['experiments/', (s) => experimentReportKey('lineage', s)],
    ['runs/', (s) => runManifestKey(s)],
    ['runs/', (s) => checkpointKey(s, 3)],
    ['logits/', (s) => logitManifestKey(s, 'mnist', 'float16')],
    ['logits/', (s) => logitShardKey('abc', s, 'float16', 0)],
    ['logits/', (s) => logitManifestKey('abc', 'mnist', s)],
    ['analysis/', (s) => analysisKey(s, 'result.json')],
  ];
  fc.assert(
    fc.property(
      fc.constantFrom(...builders),
      fc.oneof(
        hostileName,
        fc.string({ maxLength: 20 }),
        fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._=-]{0,30}$/),
      ),
      ([prefix, build], s) => {
        tried++;
        let key: string;
        try {
          key = build(s);
        } catch (e) {
          assert.ok(e instanceof StoreUsageError, String(e));
          return;
        }
        assert.ok(key.startsWith(prefix), key);
        assert.equal(checkKey(key), key);
        // The part is exactly one segment of the key.
        assert.ok(key.split('/').includes(s) || key.split('/').some((p) => p.startsWith(`${s}.`)), key);
      },
    ),
    { numRuns: RUNS, seed: 14 },
  );
  for (const s of ['..', '.', '', 'a/b', '../x', '/x', 'a\\b', 'a\u0000', 'x'.repeat(201)])
    for (const [, build] of builders) assert.throws(() => build(s), StoreUsageError, JSON.stringify(s));
});

test('lth status/report/analyze NAME: a hostile experiment name is refused before it reaches a visibility query', () => {
  for (const n of HOSTILE_NAMES.filter(unsafe)) {
    tried++;
    assert.throws(
      () => parseExperimentName(n),
      /EXPERIMENT: .* is not an experiment name/s,
      JSON.stringify(n),
    );
  }
});

test('report: how many hostile names and keys were tried', (t) => {
  t.diagnostic(`hostile names and keys refused or checked: ${tried}`);
  assert.ok(tried > 0);
});
