// Hostile specs, without services: for every spec kind (the registry's, sweeps, schedule options and the analysis
// config), generated one-field breakages of a valid example (wrong type, out of range, bad string, unknown key,
// missing required key, as the kind's own schema says) each fail with a SpecError whose every line names the
// broken field; and through the CLI's own spec builders (file + flags) they fail before any client exists.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import fc from 'fast-check';
import { z } from 'zod';

import { specFromFlags } from '../cli/commands/train';
import { distillSpecFromFlags } from '../cli/commands/distill';
import { precomputeSpecFromFlags } from '../cli/commands/teachers';
import { parseScheduleOptions } from '../cli/commands/schedule';
import { readSweep } from '../cli/commands/sweep';
import { lotterySpecFromFlags } from '../cli/lottery-spec';
import { readSpecFile } from '../cli/spec-file';
import { analysisConfigSchema } from '../contract/analysis';
import { distillSpecSchema } from '../contract/distill';
import { lotterySpecSchema } from '../contract/lottery';
import { precomputeSpecSchema } from '../contract/precompute';
import { scheduleOptionsSchema } from '../contract/schedule';
import { parseSpec, SpecError } from '../contract/spec';
import { SPEC_KINDS } from '../contract/spec-kinds';
import { parseSweepSpec, sweepSpecSchema } from '../contract/sweep';
import { validateSweep } from '../contract/sweep-trials';
import { trainSpecSchema } from '../contract/train';
import {
  apply,
  example,
  jsonSchemaOf,
  mutationArb,
  mutations,
  namesField,
  nested,
  type Mutation,
} from './hostile-support';

const RUNS = 200;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-hostile-spec-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

interface Target {
  name: string;
  base: Record<string, unknown>;
  parse: (input: unknown) => unknown;
  ms: Mutation[];
}

/** The schema of each registered kind: a kind added to the registry without one here fails the first test. */
const KIND_SCHEMAS: Record<string, z.ZodType> = {
  train: trainSpecSchema,
  lottery: lotterySpecSchema,
  precompute: precomputeSpecSchema,
  distill: distillSpecSchema,
};
const KIND_EXAMPLES: Record<string, string[]> = {
  train: ['lenet-mnist.yaml'],
  lottery: ['lottery-lenet-mnist.yaml', 'lottery-lenet-mnist-geometry.yaml'],
  precompute: ['teachers/precompute-mnist.yaml'],
  distill: ['distill/both-tokens.yaml', 'distill/cnn-features.yaml'],
};

const sweepBase = example('sweeps/lottery-lenet-rewind-fraction.yaml');
const sweepAxes = (sweepBase.axes as unknown[]).map((_, i) => `axes.${i}.values`);
const parseSweep = (s: unknown) => validateSweep(parseSweepSpec(s));
const scheduleBase = {
  id: 'nightly-lenet',
  cron: ['0 2 * * *'],
  every: '6h',
  overlap: 'skip',
  catchupWindow: '1d',
  jitter: '5m',
  note: 'every night',
  paused: false,
};

const targets: Target[] = [
  ...SPEC_KINDS.flatMap((k) =>
    (KIND_EXAMPLES[k.kind] ?? []).map((file) => {
      const base = example(file);
      return {
        name: `${k.kind} (${file})`,
        base,
        parse: k.parse as (input: unknown) => unknown,
        ms: mutations(base, jsonSchemaOf(KIND_SCHEMAS[k.kind] as z.ZodType)),
      };
    }),
  ),
  {
    name: 'sweep',
    base: sweepBase,
    parse: parseSweep,
    ms: [
      ...mutations(sweepBase, jsonSchemaOf(sweepSpecSchema), ['base', ...sweepAxes]),
      // The base is checked as its kind's spec, its fields named under base.
      ...mutations(sweepBase.base, jsonSchemaOf(lotterySpecSchema)).map((m) => ({
        ...m,
        path: ['base', ...m.path],
        field: m.field === '' ? 'base' : `base.${m.field}`,
      })),
    ],
  },
  {
    name: 'schedule options',
    base: scheduleBase,
    parse: parseScheduleOptions,
    ms: mutations(scheduleBase, jsonSchemaOf(scheduleOptionsSchema)),
  },
  {
    name: 'analysis config',
    base: example('analysis/default.yaml'),
    parse: (s) => parseSpec(analysisConfigSchema, s, 'analysis config'),
    ms: mutations(example('analysis/default.yaml'), jsonSchemaOf(analysisConfigSchema)),
  },
];

let tried = 0;
let collateral = 0;

/** The spec is refused with a SpecError, and every line of it is about `field` (nothing else is blamed). */
function assertRefused(t: Target, spec: unknown, field: string, what: string, key?: string): void {
  tried++;
  let err: unknown = null;
  try {
    t.parse(spec);
  } catch (e) {
    err = e;
  }
  assert.ok(err !== null, `${t.name}: ${what} at ${field} was accepted`);
  assert.ok(err instanceof SpecError, `${t.name}: ${what} at ${field} threw ${String(err)}, not a SpecError`);
  assert.ok(err.issues.length >= 1, `${t.name}: ${what}: no issue lines`);
  const lines = err.issues.map((l) => l.replace(/^axes\[(\d+)\]/, 'axes.$1'));
  // The first line is the field's; later ones may be checks across fields that the broken value also fails.
  assert.ok(
    namesField(lines[0] as string, field),
    `${t.name}: ${what} at '${field}': the first line does not name it:\n  ${err.issues.join('\n  ')}`,
  );
  if (key !== undefined)
    assert.ok(
      err.issues.some((l) => namesField(l, field) && l.includes(`"${key}"`)),
      `${t.name}: the unknown key ${JSON.stringify(key)} is not named:\n  ${err.issues.join('\n  ')}`,
    );
  if (lines.some((l) => !namesField(l, field))) collateral++;
  assert.ok(err.message.includes(field === '' ? '(root)' : field), `${t.name}: message lacks ${field}`);
}

test('every registered spec kind has a schema and an example here, and each example is valid', () => {
  for (const k of SPEC_KINDS) {
    assert.ok(KIND_SCHEMAS[k.kind], `spec kind ${k.kind} has no schema in this test`);
    assert.ok((KIND_EXAMPLES[k.kind] ?? []).length > 0, `spec kind ${k.kind} has no example in this test`);
  }
  for (const t of targets) {
    assert.doesNotThrow(() => t.parse(t.base), `${t.name}: the valid base`);
    // Every mutation kind the schema allows is generated for it (a change to the walk that finds none fails here).
    for (const how of ['wrong type', 'unknown key'])
      assert.ok(
        t.ms.some((m) => m.how === how),
        `${t.name}: no '${how}' mutation`,
      );
  }
});

for (const t of targets) {
  test(`${t.name}: every field, broken every way its schema allows, is refused naming the field`, () => {
    // Each mutation once (coverage of every field), with a generated value...
    for (const m of t.ms) {
      const [op] = fc.sample(m.arb, { numRuns: 1, seed: 42 });
      const { spec, field, key } = apply(t.base, m, op as Parameters<typeof apply>[2]);
      assertRefused(t, spec, field, m.how, key);
    }
    // ... and then at random.
    fc.assert(
      fc.property(mutationArb(t.ms), ({ m, op }) => {
        const { spec, field, key } = apply(t.base, m, op);
        assertRefused(t, spec, field, `${m.how} ${JSON.stringify(op)}`, key);
      }),
      { numRuns: RUNS, seed: 15 },
    );
  });
}

test('a spec nested too deeply is refused as a SpecError, not a stack overflow', () => {
  for (const depth of [200, 20_000]) {
    const sweep = { ...sweepBase, axes: [{ field: 'levels', values: [nested(depth)] }] };
    const err = (() => {
      try {
        parseSweep(sweep);
      } catch (e) {
        return e;
      }
      return null;
    })();
    assert.ok(err instanceof SpecError, `depth ${depth}: ${String(err)}`);
    tried++;
  }
});

// Through the CLI's spec builders: the spec file and flags merged as `lth <kind>` does, all before a client exists.
const builders: {
  name: string;
  base: Record<string, unknown>;
  build: (file: string) => unknown;
  kind: string;
}[] = [
  {
    name: 'lth train',
    base: example('lenet-mnist.yaml'),
    build: (config) => specFromFlags({ config }),
    kind: 'train',
  },
  {
    name: 'lth lottery',
    base: example('lottery-lenet-mnist.yaml'),
    build: (config) => lotterySpecFromFlags({ config }),
    kind: 'lottery',
  },
  {
    name: 'lth teachers precompute',
    base: example('teachers/precompute-mnist.yaml'),
    build: (config) => precomputeSpecFromFlags({ config }),
    kind: 'precompute',
  },
  {
    name: 'lth distill',
    base: example('distill/both-tokens.yaml'),
    build: (config) => distillSpecFromFlags({ config }),
    kind: 'distill',
  },
  { name: 'lth sweep', base: sweepBase, build: (config) => readSweep(config), kind: 'sweep' },
];

for (const b of builders) {
  test(`${b.name}: generated bad spec files fail in the CLI's spec builder, naming the field`, () => {
    const t = targets.find((x) => x.name.startsWith(b.kind)) as Target;
    // Without a train section the CLI builds one from its flags and defaults (`lth train --epochs 2` needs no file).
    const ms = t.ms.filter((m) => !(m.how === 'missing' && m.field === 'train'));
    let n = 0;
    fc.assert(
      fc.property(mutationArb(ms), ({ m, op }) => {
        const { spec, field, key } = apply(b.base, m, op);
        // JSON keeps what YAML would too (NaN and infinities are YAML's .nan / .inf).
        const file = path.join(tmp, `${b.kind}-${n++}.yaml`);
        fs.writeFileSync(file, toYaml(spec));
        const read = readSpecFile(file);
        assertRefused(
          { ...t, parse: () => b.build(file) },
          read,
          field,
          `${m.how} ${JSON.stringify(op)}`,
          key,
        );
      }),
      { numRuns: 40, seed: 7 },
    );
  });
}

test('a train section of the wrong type is named by every CLI spec builder, not replaced by defaults', () => {
  for (const b of builders.filter((x) => 'train' in x.base)) {
    for (const bad of [5, 'lenet', [1], true]) {
      const file = path.join(tmp, `${b.kind}-train-${JSON.stringify(bad)}.yaml`);
      fs.writeFileSync(file, toYaml({ ...b.base, train: bad }));
      const t = targets.find((x) => x.name.startsWith(b.kind)) as Target;
      assertRefused({ ...t, parse: () => b.build(file) }, null, 'train', `train = ${JSON.stringify(bad)}`);
    }
  }
});

/** YAML for a generated spec: JSON (YAML's subset) but with .nan/.inf, and keys quoted. */
function toYaml(v: unknown): string {
  if (typeof v === 'number' && !Number.isFinite(v))
    return Number.isNaN(v) ? '.nan' : v > 0 ? '.inf' : '-.inf';
  if (Array.isArray(v)) return `[${v.map(toYaml).join(', ')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.entries(v)
      .map(([k, x]) => `${JSON.stringify(k)}: ${toYaml(x)}`)
      .join(', ')}}`;
  return JSON.stringify(v);
}

test('report: how many hostile specs were tried', (t) => {
  t.diagnostic(`hostile specs refused: ${tried}; with a line about another field too: ${collateral}`);
  for (const how of ['out of range', 'bad string', 'missing'])
    assert.ok(
      targets.some((x) => x.ms.some((m) => m.how === how)),
      `no '${how}' mutation anywhere`,
    );
  assert.ok(tried > 0);
});
