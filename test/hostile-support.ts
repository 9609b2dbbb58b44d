// Generated hostile input for the test/hostile-*.test.ts files: invalid specs made from a valid one by changing one
// field, chosen and broken as the spec's own schema says (zod's JSON Schema of it: types, enums, patterns, bounds,
// required and unknown keys), and hostile names for anything that becomes part of a workflow id or an object key.
import fs from 'node:fs';
import path from 'node:path';

import fc from 'fast-check';
import YAML from 'yaml';
import { z } from 'zod';

import { REPO_ROOT } from '../infra/paths';

export type Path = (string | number)[];
type JsonSchema = Record<string, unknown> & {
  type?: string;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  minItems?: number;
};

/** One way to break a valid spec: at `path`, set a generated value, delete the key, or add an unknown key. */
export interface Mutation {
  how: 'wrong type' | 'out of range' | 'bad string' | 'unknown key' | 'missing';
  path: Path;
  /** The dotted field the error must name. */
  field: string;
  arb: fc.Arbitrary<{ op: 'set'; value: unknown } | { op: 'delete' } | { op: 'add'; key: string }>;
}

export const dotted = (p: Path): string => p.map(String).join('.');

/** A valid example spec of the repository (examples/...), as the CLI reads it. */
export function example(rel: string): Record<string, unknown> {
  return YAML.parse(fs.readFileSync(path.join(REPO_ROOT, 'examples', rel), 'utf8')) as Record<
    string,
    unknown
  >;
}

export function jsonSchemaOf(schema: z.ZodType): JsonSchema {
  return z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
}

/**
 * Names that must never become a path segment, a workflow id part or a label: traversal, absolute paths,
 * separators, control and invisible characters, empty and over-long names.
 */
export const HOSTILE_NAMES: readonly string[] = [
  '',
  '.',
  '..',
  '../x',
  'a/../../b',
  '/etc/passwd',
  'a/b',
  'a\\b',
  '\\\\server\\share',
  'C:\\x',
  'a\u0000b',
  'a\nb',
  'a\rb',
  'a\tb',
  '\u007f',
  'a\u0085b',
  'a\u202eb',
  'a\u200bb',
  '\ud800',
  ' a',
  'a ',
  'a b',
  '-a',
  '.hidden',
  'a//b',
  'a'.repeat(65),
  'x'.repeat(1025),
  'a"b',
  "a'b",
  'a`b',
  'a$b',
  'a*b',
  'Experiment = "x" OR x',
  'a%2e%2e',
  'é',
];

/** Arbitrary hostile names: the fixed list, and generated strings with a separator, dot segment or control. */
export const hostileName: fc.Arbitrary<string> = fc.oneof(
  fc.constantFrom(...HOSTILE_NAMES),
  fc
    .tuple(
      fc.string({ maxLength: 8 }),
      fc.constantFrom('/', '\\', '..', '\u0000', '\n', '\u001f', '\u007f', '\u0085', ' '),
      fc.string({ maxLength: 8 }),
    )
    .map(([a, s, b]) => `${a}${s}${b}`),
  fc.string({ minLength: 65, maxLength: 300 }),
);

const JSON_TYPES = ['number', 'string', 'boolean', 'null', 'array', 'object'] as const;
type JsonType = (typeof JSON_TYPES)[number];

function typeArb(t: JsonType): fc.Arbitrary<unknown> {
  switch (t) {
    case 'number':
      return fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }));
    case 'string':
      // Digits included: "128" must not pass for 128.
      return fc.oneof(fc.string({ maxLength: 12 }), fc.integer().map(String));
    case 'boolean':
      return fc.boolean();
    case 'null':
      return fc.constant(null);
    case 'array':
      return fc.array(fc.oneof(fc.integer(), fc.string({ maxLength: 4 })), { maxLength: 3 });
    case 'object':
      return fc.dictionary(fc.string({ minLength: 1, maxLength: 6 }), fc.integer(), { maxKeys: 3 });
  }
}

/** The JSON types a schema accepts (of any of its union options); every type for an unconstrained one. */
function acceptedTypes(s: JsonSchema): Set<JsonType> {
  const options = s.anyOf ?? s.oneOf;
  if (options) return new Set(options.flatMap((o) => [...acceptedTypes(o)]));
  if (s.const !== undefined) return new Set([jsType(s.const)]);
  if (s.enum) return new Set(s.enum.map(jsType));
  if (s.type === 'integer') return new Set(['number']);
  if (s.type && (JSON_TYPES as readonly string[]).includes(s.type)) return new Set([s.type as JsonType]);
  return new Set(JSON_TYPES);
}

function jsType(v: unknown): JsonType {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'array';
  return typeof v as JsonType;
}

/** The union option a valid value is an instance of (objects: by their `kind` const and their keys). */
function resolve(s: JsonSchema, value: unknown): JsonSchema {
  const options = s.anyOf ?? s.oneOf;
  if (!options) return s;
  const t = jsType(value);
  const fits = options.filter((o) => {
    const r = resolve(o, value);
    if (!acceptedTypes(r).has(t)) return false;
    if (r.const !== undefined) return r.const === value;
    if (r.enum) return r.enum.includes(value);
    if (t === 'object' && r.properties) {
      const obj = value as Record<string, unknown>;
      const kind = r.properties.kind?.const;
      if (kind !== undefined && obj.kind !== kind) return false;
      return Object.keys(obj).every((k) => k in (r.properties as object));
    }
    return true;
  });
  return resolve(fits[0] ?? (options[0] as JsonSchema), value);
}

const set = (value: unknown) => ({ op: 'set' as const, value });

/** Values a string field's schema refuses (its enum or const, its pattern, its length bounds). */
function badStrings(s: JsonSchema, value: string): fc.Arbitrary<string> | null {
  const arbs: fc.Arbitrary<string>[] = [];
  if (s.enum || s.const !== undefined) {
    const allowed = new Set((s.enum ?? [s.const]) as unknown[]);
    arbs.push(
      fc.oneof(fc.constant(`${value}~`), fc.string({ maxLength: 12 })).filter((x) => !allowed.has(x)),
    );
  }
  if (s.pattern) {
    const re = new RegExp(s.pattern, 'u');
    arbs.push(fc.oneof(hostileName, fc.string({ maxLength: 20 })).filter((x) => !re.test(x)));
  }
  if (s.minLength !== undefined && s.minLength > 0) arbs.push(fc.constant(''));
  if (s.maxLength !== undefined) arbs.push(fc.constant('a'.repeat(s.maxLength + 1)));
  return arbs.length > 0 ? fc.oneof(...arbs) : null;
}

/** Numbers a number field's schema refuses: non-finite, non-integer for integers, beyond each bound. */
function badNumbers(s: JsonSchema): fc.Arbitrary<number> {
  const arbs: fc.Arbitrary<number>[] = [fc.constantFrom(Number.NaN, Infinity, -Infinity)];
  if (s.type === 'integer')
    arbs.push(
      fc
        .double({ min: -1e9, max: 1e9, noNaN: true })
        .filter((x) => !Number.isInteger(x) && Math.abs(x) < 1e9),
    );
  if (s.minimum !== undefined) {
    const min = s.minimum;
    arbs.push(fc.double({ max: min, noNaN: true, noDefaultInfinity: true }).filter((x) => x < min));
  }
  if (s.exclusiveMinimum !== undefined) {
    const min = s.exclusiveMinimum;
    arbs.push(fc.double({ max: min, noNaN: true, noDefaultInfinity: true }));
  }
  if (s.maximum !== undefined && s.maximum < Number.MAX_SAFE_INTEGER) {
    const max = s.maximum;
    arbs.push(fc.double({ min: max, noNaN: true, noDefaultInfinity: true }).filter((x) => x > max));
  }
  if (s.exclusiveMaximum !== undefined) {
    const max = s.exclusiveMaximum;
    arbs.push(fc.double({ min: max, noNaN: true, noDefaultInfinity: true }));
  }
  return fc.oneof(...arbs);
}

/**
 * Every one-field way to break `value` that `schema` (a JSON Schema, from jsonSchemaOf) says is invalid: for each
 * field a wrong type, a value out of range, a bad string, an unknown key beside it, or a required key dropped.
 * Fields under `skip` (dotted prefixes) are left alone: free-form JSON that no schema constrains.
 */
export function mutations(
  value: unknown,
  schema: JsonSchema,
  skip: string[] = [],
  at: Path = [],
): Mutation[] {
  const field = dotted(at);
  if (skip.some((p) => field === p || field.startsWith(`${p}.`))) return [];
  const s = resolve(schema, value);
  const out: Mutation[] = [];
  const t = jsType(value);
  if (at.length > 0) {
    const wrong = JSON_TYPES.filter((x) => !acceptedTypes(schema).has(x));
    if (wrong.length > 0)
      out.push({ how: 'wrong type', path: at, field, arb: fc.oneof(...wrong.map(typeArb)).map(set) });
    if (t === 'number') out.push({ how: 'out of range', path: at, field, arb: badNumbers(s).map(set) });
    if (t === 'string') {
      const bad = badStrings(s, value as string);
      if (bad) out.push({ how: 'bad string', path: at, field, arb: bad.map(set) });
    }
  }
  if (t === 'object' && value !== null) {
    const obj = value as Record<string, unknown>;
    for (const [k, v] of Object.entries(obj)) {
      const sub =
        s.properties?.[k] ?? (typeof s.additionalProperties === 'object' ? s.additionalProperties : {});
      out.push(...mutations(v, sub, skip, [...at, k]));
    }
    if (s.additionalProperties === false) {
      const known = new Set(Object.keys(s.properties ?? {}));
      const key = fc
        .oneof(
          fc.constantFrom('__proto__', 'constructor', 'toString', 'zz', 'Experiment'),
          fc.string({ minLength: 1, maxLength: 10 }),
        )
        .filter((k) => !known.has(k) && !(k in obj));
      out.push({
        how: 'unknown key',
        path: at,
        field,
        arb: key.map((k) => ({ op: 'add' as const, key: k })),
      });
    }
    for (const k of s.required ?? [])
      if (k in obj)
        out.push({
          how: 'missing',
          path: [...at, k],
          field: dotted([...at, k]),
          arb: fc.constant({ op: 'delete' as const }),
        });
  }
  if (t === 'array') {
    const items = value as unknown[];
    items.forEach((v, i) => out.push(...mutations(v, s.items ?? {}, skip, [...at, i])));
    if (s.minItems !== undefined && s.minItems > 0)
      out.push({ how: 'out of range', path: at, field, arb: fc.constant(set([])) });
  }
  return out;
}

/** A deep copy of `spec` with the mutation applied; `field` is what the error must name. */
export function apply(
  spec: unknown,
  m: Mutation,
  op: { op: 'set'; value: unknown } | { op: 'delete' } | { op: 'add'; key: string },
): { spec: unknown; field: string; key?: string } {
  const copy = structuredClone(spec);
  if (op.op === 'add') {
    const target = m.path.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], copy);
    // An own property even for "__proto__", as JSON.parse and YAML make it.
    Object.defineProperty(target, op.key, { value: 1, enumerable: true, writable: true, configurable: true });
    // zod names the object, and the key in its message.
    return { spec: copy, field: m.field, key: op.key };
  }
  const parent = m.path
    .slice(0, -1)
    .reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], copy) as Record<
    string | number,
    unknown
  >;
  const last = m.path.at(-1) as string | number;
  if (op.op === 'delete') delete parent[last];
  else parent[last] = op.value;
  return { spec: copy, field: m.field };
}

/** The mutation with its generated operation, for fc.property. */
export function mutationArb(ms: Mutation[]) {
  return fc.constantFrom(...ms).chain((m) => m.arb.map((op) => ({ m, op })));
}

/**
 * True when an issue line (`field: problem`) is about `field` or something inside it, or is about a union that
 * contains it and offers each of its forms, one of them naming `field`.
 */
export function namesField(line: string, field: string): boolean {
  const f = field === '' ? '(root)' : field;
  if (line.startsWith(`${f}: `) || line.startsWith(`${f}.`)) return true;
  const colon = line.indexOf(': ');
  const at = line.slice(0, colon);
  return (
    (f.startsWith(`${at}.`) || at === '(root)') &&
    line.slice(colon).startsWith(': matches none of its forms: ') &&
    line.includes(`${f}: `)
  );
}

/** The value nested `depth` arrays deep. */
export function nested(depth: number, leaf: unknown = 1): unknown {
  let v: unknown = leaf;
  for (let i = 0; i < depth; i++) v = [v];
  return v;
}
