// Hostile safetensors files and logit shards: generated headers with huge or negative lengths, out-of-range or
// overlapping data offsets, bad dimensions, dtype/size mismatches, non-JSON and deeply nested headers. Each must be
// refused with the reader's typed error (SafetensorsError, ArtifactFormatError), never another exception, and
// without allocating from a length it has not checked against the object's size.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import fc from 'fast-check';

import { ArtifactFormatError } from '../store/errors';
import { decodeLogitShard, encodeLogitShard } from '../store/logit-shards';
import { decodeSafetensors, encodeSafetensors, SafetensorsError } from '../store/safetensors';

const RUNS = 200;
let tried = 0;

function refused(f: () => unknown, type: new (...a: never[]) => Error, what: string): void {
  tried++;
  try {
    f();
  } catch (e) {
    assert.ok(e instanceof type, `${what}: threw ${String(e)}, not a ${type.name}`);
    assert.ok((e as Error).message.length > 0);
    return;
  }
  assert.fail(`${what}: was accepted`);
}

/** A safetensors file from a header object (or raw header text) and a data section; `len` overrides the length. */
function stFile(header: unknown, data: Uint8Array, len?: bigint): Uint8Array {
  const text = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header), 'utf8');
  const out = new Uint8Array(8 + text.length + data.length);
  new DataView(out.buffer).setBigUint64(0, len ?? BigInt(text.length), true);
  out.set(text, 8);
  out.set(data, 8 + text.length);
  return out;
}

const valid = encodeSafetensors({
  w: { dtype: 'float32', shape: [2, 3], data: new Float32Array(6).fill(1) },
  m: { dtype: 'uint8', shape: [4], data: new Uint8Array(4) },
});

test('the valid file decodes (the baseline every hostile one is a change of)', () => {
  assert.deepEqual(Object.keys(decodeSafetensors(valid).tensors).sort(), ['m', 'w']);
});

test('safetensors: a header length beyond the file or the cap is refused before anything is allocated', () => {
  const before = process.memoryUsage().arrayBuffers;
  fc.assert(
    fc.property(
      fc.oneof(fc.bigInt({ min: 1n, max: (1n << 64n) - 1n }), fc.constantFrom((1n << 64n) - 1n, 1n << 63n)),
      fc.uint8Array({ maxLength: 64 }),
      (len, body) => {
        fc.pre(len > BigInt(body.length));
        const file = new Uint8Array(8 + body.length);
        new DataView(file.buffer).setBigUint64(0, len, true);
        file.set(body, 8);
        refused(() => decodeSafetensors(file), SafetensorsError, `length ${len}`);
      },
    ),
    { numRuns: RUNS, seed: 1 },
  );
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no large allocation');
  refused(() => decodeSafetensors(new Uint8Array(5)), SafetensorsError, 'shorter than the length field');
});

const badDim = fc.oneof(
  fc.integer({ max: -1 }),
  fc.double({ noNaN: true, min: -1e6, max: 1e6 }).filter((x) => !Number.isInteger(x)),
  fc.constantFrom('NaN', '1e400', '-0.5', '"3"', 'null', '[]', '{}', 'true', '9007199254740993'),
);
const dtypes = fc.constantFrom('F32', 'I32', 'U8', 'F64', 'F16', 'BF16', 'I64', 'BOOL', 'f32', '', 'X');

test('safetensors: generated bad headers (offsets, dimensions, dtypes, sizes) are refused as SafetensorsError', () => {
  const header = fc.oneof(
    // Bad dimensions, written as raw JSON text (NaN and 1e400 are not JSON / overflow to Infinity).
    fc.tuple(badDim, dtypes).map(([d, t]) => ({
      text: `{"a":{"dtype":"${t}","shape":[2,${String(d)}],"data_offsets":[0,8]}}`,
      data: 8,
    })),
    // Offsets out of range, reversed, overlapping, leaving holes, or not matching dtype x shape.
    fc
      .tuple(
        dtypes,
        fc.array(fc.integer({ min: 0, max: 5 }), { maxLength: 3 }),
        fc.integer({ min: -3, max: 1 << 20 }),
        fc.integer({ min: -3, max: 1 << 20 }),
        fc.integer({ min: 0, max: 64 }),
      )
      .map(([t, shape, b, e, data]) => ({
        text: JSON.stringify({ a: { dtype: t, shape, data_offsets: [b, e] } }),
        data,
      })),
    // Two tensors whose ranges overlap.
    fc.tuple(fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 8 })).map(([n, o]) => ({
      text: JSON.stringify({
        a: { dtype: 'U8', shape: [n], data_offsets: [0, n] },
        b: { dtype: 'U8', shape: [n], data_offsets: [Math.max(0, n - o), Math.max(0, n - o) + n] },
      }),
      data: 2 * n,
    })),
    // Not JSON, not an object, bad metadata, deeply nested.
    fc
      .oneof(
        fc.string({ maxLength: 40 }).map((s) => `{${s}`),
        fc.constantFrom('[]', 'null', '"x"', '{"__metadata__":{"a":1}}', '{"__metadata__":[]}', '{"a":1}'),
        fc.integer({ min: 100, max: 100_000 }).map((d) => `{"a":{"dtype":${'['.repeat(d)}${']'.repeat(d)}}}`),
        fc
          .integer({ min: 100, max: 100_000 })
          .map((d) => `{"__metadata__":{"k":${'['.repeat(d)}${']'.repeat(d)}}}`),
        fc.uint8Array({ minLength: 1, maxLength: 16 }).map((b) => `{"${Buffer.from(b).toString('latin1')}`),
      )
      .map((text) => ({ text, data: 0 })),
  );
  fc.assert(
    fc.property(header, ({ text, data }) => {
      const f = stFile(text, new Uint8Array(data));
      let ok = false;
      try {
        decodeSafetensors(f);
        ok = true;
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `${text.slice(0, 120)}: ${String(e)}`);
      }
      tried++;
      // Only a header describing exactly its data section can decode: then it must be consistent.
      if (ok) {
        const h = JSON.parse(text) as Record<
          string,
          { dtype: string; shape: number[]; data_offsets: number[] }
        >;
        const size = { F32: 4, I32: 4, U8: 1, F64: 8 } as Record<string, number>;
        for (const t of Object.values(h)) {
          const [b, e] = t.data_offsets as [number, number];
          assert.equal(e - b, t.shape.reduce((x, y) => x * y, 1) * (size[t.dtype] ?? NaN));
        }
      }
    }),
    { numRuns: RUNS, seed: 2 },
  );
});

test('safetensors: any byte flipped in a valid file gives a SafetensorsError or a decoding, nothing else', () => {
  fc.assert(
    fc.property(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 1, max: 255 }), (at, x) => {
      const f = valid.slice();
      f[at] = (f[at] as number) ^ x;
      tried++;
      try {
        decodeSafetensors(f);
      } catch (e) {
        assert.ok(e instanceof SafetensorsError, `byte ${at}: ${String(e)}`);
      }
    }),
    { numRuns: RUNS, seed: 3 },
  );
});

// ---- logit shards ----

const shard = encodeLogitShard({
  format: 'float16',
  classes: 3,
  start: 10,
  logits: new Float32Array(6).fill(0.5),
});
const headerStart = 16;
const headerLen = new DataView(shard.buffer).getUint32(12, true);
const header = JSON.parse(Buffer.from(shard.subarray(16, 16 + headerLen)).toString('utf8')) as Record<
  string,
  unknown
>;

/** A shard with this header (object or raw text) and payload, its length field `len` (default: the text's). */
function shardFile(h: unknown, payload: number, len?: number): Uint8Array {
  const raw = Buffer.from(typeof h === 'string' ? h : JSON.stringify(h), 'utf8');
  const padded = Math.ceil(raw.length / 8) * 8;
  const out = new Uint8Array(headerStart + padded + payload);
  out.set(shard.subarray(0, 12), 0);
  new DataView(out.buffer).setUint32(12, len ?? padded, true);
  out.fill(0x20, 16, 16 + padded);
  out.set(raw, 16);
  return out;
}

test('logit shard: the valid shard decodes; its rebuilt file too (the baseline)', () => {
  assert.equal(decodeLogitShard(shard, 'k').values.length, 6);
  assert.equal(decodeLogitShard(shardFile(header, 12), 'k').values.length, 6);
});

test('logit shard: header lengths beyond the file, odd, or huge are refused before reading', () => {
  const before = process.memoryUsage().arrayBuffers;
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 0xffffffff }), (len) => {
      const f = shardFile(header, 12, len);
      fc.pre(len !== new DataView(f.buffer).getUint32(12, true) || len % 8 !== 0);
      const padded = f.length - 16 - 12;
      fc.pre(len !== padded);
      refused(() => decodeLogitShard(f, 'logits/x/shard-0.bin'), ArtifactFormatError, `length ${len}`);
    }),
    { numRuns: RUNS, seed: 4 },
  );
  assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024, 'no large allocation');
});

test('logit shard: generated bad header fields are refused as ArtifactFormatError naming the field', () => {
  const badNumber = fc.oneof(
    fc.integer({ max: -1 }),
    fc.double({ noNaN: true, min: -1e9, max: 1e9 }).filter((x) => !Number.isInteger(x)),
    fc.constantFrom(1e300, 2 ** 53, 2 ** 60, '3', null, [], {}),
  );
  const field = fc.constantFrom('classes', 'start', 'end', 'version', 'k');
  const mutated = fc.oneof(
    fc.tuple(field, badNumber).map(([f, v]) => ({ h: { ...header, [f]: v }, field: f })),
    // A huge sample range: the size check must refuse it without allocating n x classes.
    fc
      .integer({ min: 1000, max: Number.MAX_SAFE_INTEGER - 20 })
      .map((end) => ({ h: { ...header, end, sections: header.sections }, field: 'header' })),
    fc.constantFrom('format', 'stores').map((f) => ({ h: { ...header, [f]: 'bogus' }, field: f })),
    fc.tuple(fc.constantFrom('offset', 'bytes', 'shape', 'dtype', 'name'), badNumber).map(([f, v]) => ({
      h: { ...header, sections: [{ ...(header.sections as object[])[0], [f]: v }] },
      field: 'sections',
    })),
    fc.integer({ min: 100, max: 30_000 }).map((d) => ({
      h: `{"version":1,"format":${'['.repeat(d)}${']'.repeat(d)}}`,
      field: 'format',
    })),
    fc.string({ maxLength: 30 }).map((s) => ({ h: `{${s}`, field: 'JSON' })),
  );
  fc.assert(
    fc.property(mutated, ({ h, field: f }) => {
      tried++;
      try {
        decodeLogitShard(shardFile(h, 12), 'logits/x/shard-0.bin');
      } catch (e) {
        assert.ok(e instanceof ArtifactFormatError, String(e));
        assert.match((e as Error).message, /logits\/x\/shard-0\.bin/);
        assert.ok(
          (e as Error).message.includes(f),
          `'${f}' not named: ${(e as Error).message.slice(0, 300)}`,
        );
        return;
      }
      assert.fail(`accepted ${JSON.stringify(h).slice(0, 200)}`);
    }),
    { numRuns: RUNS, seed: 5 },
  );
});

test('report: how many hostile binary headers were tried', (t) => {
  t.diagnostic(`hostile safetensors / logit-shard inputs refused or checked: ${tried}`);
  assert.ok(tried > 0);
});
