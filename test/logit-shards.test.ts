// The logit shard codec (float32, float16, top-k), its float16 conversion and the logit
// manifest schema. Pure functions: no services needed.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  ArtifactFormatError,
  buildLogitManifest,
  bytesPerSample,
  decodeLogitShard,
  encodeLogitShard,
  float16BitsToNumber,
  float32ToFloat16Bits,
  LOGIT_SHARD_MAGIC,
  logitSetKeys,
  parseLogitManifest,
  readLogitShardHeader,
  reconstructionError,
  roundToFloat16,
  StoreUsageError,
  toProbabilities,
  type LogitFormat,
  type LogitManifestInput,
} from '../store/index.js';
import { mulberry32 } from '../ml/rng';

/** Teacher-like logits: one class clearly ahead per sample, the rest spread. */
function randomLogits(samples: number, classes: number, seed: number): Float32Array {
  const r = mulberry32(seed);
  const out = new Float32Array(samples * classes);
  for (let s = 0; s < samples; s++) {
    const hot = Math.floor(r() * classes);
    for (let c = 0; c < classes; c++) out[s * classes + c] = (r() - 0.5) * 6 + (c === hot ? 5 : 0);
  }
  return out;
}

function softmax(row: ArrayLike<number>, temperature = 1): number[] {
  const xs = Array.from(row, (v) => v / temperature);
  const max = Math.max(...xs);
  const e = xs.map((v) => Math.exp(v - max));
  const sum = e.reduce((a, b) => a + b, 0);
  return e.map((v) => v / sum);
}

const hex = (h: number): string => `0x${h.toString(16).padStart(4, '0')}`;

function formatError(key: string, field: RegExp): (e: unknown) => boolean {
  return (e: unknown) => {
    assert.ok(e instanceof ArtifactFormatError, `expected ArtifactFormatError, got ${String(e)}`);
    assert.equal(e.key, key);
    assert.match(e.message, new RegExp(`'${key}'`));
    assert.match(e.message, field);
    assert.equal(e.nonRetryable, true);
    return true;
  };
}

describe('float16 conversion', () => {
  it('encodes the edge cases exactly', () => {
    const cases: [number, number][] = [
      [0, 0x0000],
      [-0, 0x8000],
      [1, 0x3c00],
      [-2, 0xc000],
      [1 / 3, 0x3555],
      [65504, 0x7bff], // largest half
      [65519, 0x7bff], // below the midpoint to 65536: rounds down
      [65520, 0x7c00], // the midpoint: ties to even, which is the infinity encoding
      [1e6, 0x7c00],
      [-1e6, 0xfc00],
      [Infinity, 0x7c00],
      [-Infinity, 0xfc00],
      [2 ** -14, 0x0400], // smallest normal
      [2 ** -24, 0x0001], // smallest subnormal
      [-(2 ** -24), 0x8001],
      [1023 * 2 ** -24, 0x03ff], // largest subnormal
      [1023.5 * 2 ** -24, 0x0400], // tie between the largest subnormal and the smallest normal: even wins
      [2 ** -25, 0x0000], // half the smallest subnormal: ties to even 0
      [-(2 ** -25), 0x8000],
      [2 ** -25 * (1 + 2 ** -23), 0x0001], // just above that tie
      [1.5 * 2 ** -24, 0x0002], // tie between 1 and 2 subnormal units: even (2)
      [2.5 * 2 ** -24, 0x0002], // tie between 2 and 3: even (2)
      [1e-10, 0x0000],
      [1 + 2 ** -11, 0x3c00], // tie between 1 and 1 + 2^-10: even (1)
      [1 + 3 * 2 ** -11, 0x3c02], // tie between 1 + 2^-10 and 1 + 2^-9: even
      [1 + 2 ** -11 + 2 ** -20, 0x3c01], // just above the tie
      [32760, 0x7800], // tie between 32752 (odd) and 32768: the carry moves into the next binade
    ];
    for (const [x, want] of cases)
      assert.equal(hex(float32ToFloat16Bits(x)), hex(want), `float32ToFloat16Bits(${x})`);
    assert.ok(Object.is(float16BitsToNumber(0x8000), -0));
    assert.ok(Object.is(float16BitsToNumber(0x0000), 0));
    assert.equal(float16BitsToNumber(0x0001), 2 ** -24);
    assert.equal(float16BitsToNumber(0x7bff), 65504);
    assert.equal(float16BitsToNumber(0x7c00), Infinity);
    assert.equal(float16BitsToNumber(0xfc00), -Infinity);
  });

  it('keeps NaN a NaN, quiet, with its sign', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xffc00000, 0x7fbfffff]) {
      const f = new Float32Array(new Uint32Array([bits]).buffer)[0] as number;
      const h = float32ToFloat16Bits(f);
      assert.equal(h & 0x7c00, 0x7c00, hex(h));
      assert.notEqual(h & 0x3ff, 0, `${hex(h)} must not be an infinity`);
      assert.ok(Number.isNaN(float16BitsToNumber(h)));
    }
    assert.ok(Number.isNaN(roundToFloat16(Number.NaN)));
  });

  it('round-trips every half exactly', () => {
    for (let h = 0; h < 0x10000; h++) {
      const v = float16BitsToNumber(h);
      if (Number.isNaN(v)) continue;
      assert.equal(float32ToFloat16Bits(v), h, hex(h));
    }
  });

  it('rounds random float32 values to the nearest half, ties to even', () => {
    const r = mulberry32(1);
    const f = new Float32Array(1);
    const u = new Uint32Array(f.buffer);
    let checked = 0;
    while (checked < 100_000) {
      // Random bit patterns cover every exponent; keep those within the half range.
      u[0] = Math.floor(r() * 2 ** 32);
      const x = f[0] as number;
      if (!Number.isFinite(x) || Math.abs(x) >= 65504) continue;
      const h = float32ToFloat16Bits(x);
      const got = float16BitsToNumber(h);
      const err = Math.abs(got - x);
      // The neighbours of h in the same sign direction (toward zero and away from it).
      for (const n of [h - 1, h + 1]) {
        if ((n & 0x7fff) > 0x7bff || (n & 0x8000) !== (h & 0x8000) || n < 0) continue;
        const other = Math.abs(float16BitsToNumber(n) - x);
        assert.ok(err <= other, `${x}: ${hex(h)} is not nearest (${hex(n)} is closer)`);
        if (err === other) assert.equal(h & 1, 0, `${x}: tie not broken to even`);
      }
      if (x !== 0 && Math.abs(x) < 2 ** -25) assert.equal(h & 0x7fff, 0);
      checked++;
    }
  });
});

describe('logit shard codec', () => {
  const C = 10;
  const n = 37;
  const start = 100;
  const logits = randomLogits(n, C, 7);

  it('reports exact bytes per sample', () => {
    assert.equal(bytesPerSample('float32', 10), 40);
    assert.equal(bytesPerSample('float16', 10), 20);
    assert.equal(bytesPerSample('top-k', 10, 3), 9); // 3 fp16 + 3 uint8
    assert.equal(bytesPerSample('top-k', 256, 3), 9);
    assert.equal(bytesPerSample('top-k', 257, 3), 12); // uint16 indices from 257 classes
    assert.equal(bytesPerSample('top-k', 1000, 100), 400);
    assert.throws(() => bytesPerSample('top-k', 10), StoreUsageError);
    assert.throws(() => bytesPerSample('top-k', 10, 11), StoreUsageError);
    assert.throws(() => bytesPerSample('float32', 10, 3), StoreUsageError);
    assert.throws(() => bytesPerSample('float64' as LogitFormat, 10), StoreUsageError);
  });

  const layouts: { format: LogitFormat; classes: number; k?: number }[] = [
    { format: 'float32', classes: C },
    { format: 'float16', classes: C },
    { format: 'top-k', classes: C, k: 3 },
    { format: 'top-k', classes: 300, k: 5 },
  ];
  for (const { format, classes, k } of layouts) {
    it(`encodes ${format}${k ? ` k=${k}` : ''} C=${classes} to exactly 16 + header + samples × bytesPerSample`, () => {
      const x = classes === C ? logits : randomLogits(n, classes, 9);
      const bytes = encodeLogitShard({ format, classes, ...(k ? { k } : {}), start, logits: x });
      assert.equal(Buffer.from(bytes.subarray(0, 8)).toString('latin1'), LOGIT_SHARD_MAGIC);
      const { header, payloadOffset } = readLogitShardHeader(bytes, 'k');
      assert.equal(payloadOffset % 8, 0);
      assert.equal(bytes.length - payloadOffset, n * bytesPerSample(format, classes, k));
      assert.deepEqual(
        { format: header.format, classes: header.classes, k: header.k, start: header.start, end: header.end },
        { format, classes, k, start, end: start + n },
      );
      // Deterministic: the same input, the same bytes (so content-addressed reruns match).
      assert.deepEqual(encodeLogitShard({ format, classes, ...(k ? { k } : {}), start, logits: x }), bytes);
    });
  }

  it('round-trips float32 bit-exactly', () => {
    const d = decodeLogitShard(encodeLogitShard({ format: 'float32', classes: C, start, logits }), 'k');
    assert.equal(d.kind, 'logits');
    assert.deepEqual([d.start, d.end, d.classes], [start, start + n, C]);
    assert.deepEqual(d.values, logits);
  });

  it('round-trips float16 to the nearest half of each logit', () => {
    const d = decodeLogitShard(encodeLogitShard({ format: 'float16', classes: C, start, logits }), 'k');
    assert.equal(d.kind, 'logits');
    for (let i = 0; i < logits.length; i++) {
      const x = logits[i] as number;
      assert.equal(d.values[i], roundToFloat16(x));
      assert.ok(Math.abs((d.values[i] as number) - x) <= Math.abs(x) * 2 ** -11 + 2 ** -25);
    }
  });

  for (const [classes, k] of [
    [C, 3],
    [C, 1],
    [C, C],
    [300, 5],
  ] as const) {
    it(`reconstructs a distribution from top-${k} of ${classes}: sums to 1, matches the full one on the top classes`, () => {
      const x = classes === C ? logits : randomLogits(n, classes, 9);
      const d = decodeLogitShard(encodeLogitShard({ format: 'top-k', classes, k, start, logits: x }), 'k');
      assert.equal(d.kind, 'probabilities');
      assert.equal(d.k, k);
      for (let s = 0; s < n; s++) {
        const full = softmax(x.subarray(s * classes, (s + 1) * classes));
        const row = Array.from(d.values.subarray(s * classes, (s + 1) * classes));
        const sum = row.reduce((a, b) => a + b, 0);
        assert.ok(Math.abs(sum - 1) < 1e-5, `sample ${s}: sums to ${sum}`);
        const order = full.map((p, c) => [p, c] as const).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
        const top = order.slice(0, k).map(([, c]) => c);
        for (const c of top) {
          const want = full[c] as number;
          // fp16 rounding (2^-11 relative), plus a renormalisation when rounding pushed Σ over 1.
          assert.ok(
            Math.abs((row[c] as number) - want) <= want * 2 ** -10 + 2 ** -24,
            `sample ${s} class ${c}: ${row[c]} vs ${want}`,
          );
        }
        if (k < classes) {
          const rest = order.slice(k).map(([, c]) => c);
          const leftover = 1 - top.reduce((a, c) => a + roundToFloat16(full[c] as number), 0);
          for (const c of rest)
            assert.ok(Math.abs((row[c] as number) - Math.max(0, leftover) / (classes - k)) < 1e-6);
        }
      }
    });
  }

  it('stores the rounded top-k probabilities exactly when they sum to at most 1', () => {
    // Two samples, classes 0..3; probabilities chosen so the order and the rounding are known.
    const x = new Float32Array([Math.log(0.5), Math.log(0.3), Math.log(0.15), Math.log(0.05), 0, 0, 0, 5]);
    const d = decodeLogitShard(
      encodeLogitShard({ format: 'top-k', classes: 4, k: 2, start: 0, logits: x }),
      'k',
    );
    const [a, b] = [roundToFloat16(0.5), roundToFloat16(0.3)];
    const rest0 = (1 - (a + b)) / 2;
    assert.deepEqual(Array.from(d.values.subarray(0, 4)), [a, b, rest0, rest0].map(Math.fround));
    // Sample 1: class 3 leads; classes 0..2 tie, and the lowest index wins the tie.
    const q = softmax([0, 0, 0, 5]);
    const row1 = Array.from(d.values.subarray(4, 8));
    assert.equal(row1[3], Math.fround(roundToFloat16(q[3] as number)));
    assert.equal(row1[0], Math.fround(roundToFloat16(q[0] as number)));
    assert.equal(row1[1], row1[2]);
  });

  it('turns logits and probabilities into probabilities at any temperature', () => {
    const d32 = decodeLogitShard(encodeLogitShard({ format: 'float32', classes: C, start, logits }), 'k');
    const full = decodeLogitShard(
      encodeLogitShard({ format: 'top-k', classes: C, k: C, start, logits }),
      'k',
    );
    for (const T of [1, 2, 4]) {
      const fromLogits = toProbabilities(d32, T);
      const fromProbs = toProbabilities(full, T);
      for (let s = 0; s < n; s++) {
        const want = softmax(logits.subarray(s * C, (s + 1) * C), T);
        for (let c = 0; c < C; c++) {
          assert.ok(Math.abs((fromLogits[s * C + c] as number) - (want[c] as number)) < 1e-6);
          // p^(1/T) of fp16-rounded probabilities: relative error grows by at most 1/T.
          assert.ok(
            Math.abs((fromProbs[s * C + c] as number) - (want[c] as number)) <=
              (want[c] as number) * 2e-3 + 1e-6,
          );
        }
      }
    }
    const copy = toProbabilities(full);
    assert.deepEqual(copy, full.values);
    assert.notEqual(copy, full.values);
    assert.throws(() => toProbabilities(d32, 0), StoreUsageError);
  });

  it('refuses inputs it cannot store faithfully', () => {
    const bad = Float32Array.from(logits);
    bad[13] = Number.NaN;
    assert.throws(
      () => encodeLogitShard({ format: 'float32', classes: C, start, logits: bad }),
      /sample 101, class 3 is NaN/,
    );
    const big = Float32Array.from(logits);
    big[0] = 70000;
    assert.throws(
      () => encodeLogitShard({ format: 'float16', classes: C, start, logits: big }),
      /70000: beyond the float16 range/,
    );
    encodeLogitShard({ format: 'float32', classes: C, start, logits: big });
    assert.throws(
      () => encodeLogitShard({ format: 'float32', classes: C, start, logits: logits.subarray(0, 15) }),
      /15 values, not a positive multiple of classes = 10/,
    );
    assert.throws(
      () => encodeLogitShard({ format: 'top-k', classes: C, start, logits }),
      /top-k needs an integer k/,
    );
    assert.throws(() => encodeLogitShard({ format: 'float32', classes: C, start: -1, logits }), /start/);
  });
});

describe('logit shard validation on decode', () => {
  const C = 10;
  const key = 'logits/abc/mnist/top-3/shard-0.bin';
  const good = encodeLogitShard({
    format: 'top-k',
    classes: C,
    k: 3,
    start: 0,
    logits: randomLogits(5, C, 3),
  });
  const { payloadOffset } = readLogitShardHeader(good, key);
  const headerText = Buffer.from(good.subarray(16, payloadOffset)).toString('utf8');

  /** The shard with its header text replaced (padded to the same length) and the same payload. */
  function withHeader(text: string): Uint8Array {
    const raw = Buffer.from(text, 'utf8');
    const len = Math.ceil(raw.length / 8) * 8;
    const out = new Uint8Array(16 + len + good.length - payloadOffset);
    out.set(good.subarray(0, 16));
    new DataView(out.buffer).setUint32(12, len, true);
    out.fill(0x20, 16, 16 + len);
    out.set(raw, 16);
    out.set(good.subarray(payloadOffset), 16 + len);
    return out;
  }

  it('accepts the intact shard', () => {
    assert.equal(decodeLogitShard(good, key).values.length, 5 * C);
  });

  it('refuses a wrong magic, version or header length', () => {
    const magic = Uint8Array.from(good);
    magic[0] = 0x58;
    assert.throws(() => decodeLogitShard(magic, key), formatError(key, /magic: expected "LTHLOGIT"/));
    const version = Uint8Array.from(good);
    new DataView(version.buffer).setUint32(8, 2, true);
    assert.throws(
      () => decodeLogitShard(version, key),
      formatError(key, /version: this reader knows layout 1/),
    );
    const len = Uint8Array.from(good);
    new DataView(len.buffer).setUint32(12, 1 << 30, true);
    assert.throws(() => decodeLogitShard(len, key), formatError(key, /header length/));
    assert.throws(() => decodeLogitShard(good.subarray(0, 10), key), formatError(key, /shorter than/));
  });

  it('refuses a payload one byte short or long', () => {
    assert.throws(
      () => decodeLogitShard(good.subarray(0, good.length - 1), key),
      formatError(key, /size: 5 samples of top-k need a 45-byte payload, the file has 44/),
    );
    const long = new Uint8Array(good.length + 1);
    long.set(good);
    assert.throws(() => decodeLogitShard(long, key), formatError(key, /the file has 46/));
  });

  it('refuses a header that is not JSON, fails the schema, or contradicts itself', () => {
    assert.throws(() => decodeLogitShard(withHeader('{"format":'), key), formatError(key, /not valid JSON/));
    assert.throws(
      () => decodeLogitShard(withHeader(headerText.replace('"top-k"', '"top-q"')), key),
      formatError(key, /header: format: /),
    );
    assert.throws(
      () =>
        decodeLogitShard(
          withHeader(headerText.replace('"stores":"probabilities"', '"stores":"logits"')),
          key,
        ),
      formatError(key, /header\.stores: expected "probabilities", got "logits"/),
    );
    assert.throws(
      () => decodeLogitShard(withHeader(headerText.replace('"dtype":"uint8"', '"dtype":"uint16"')), key),
      formatError(key, /header\.sections\[1\]\.dtype: expected "uint8", got "uint16"/),
    );
    assert.throws(
      () => decodeLogitShard(withHeader(headerText.replace('"classes":10', '"classes":2')), key),
      formatError(key, /header\.k: 3 exceeds header\.classes 2/),
    );
    assert.throws(
      () => decodeLogitShard(withHeader(headerText.replace('"end":5', '"end":6')), key),
      formatError(key, /header\.sections\[0\]\.shape\[0\]: expected 6, got 5/),
    );
    assert.throws(
      () => decodeLogitShard(withHeader(headerText.replace('"start":0', '"start":0,"extra":1')), key),
      formatError(key, /extra/),
    );
  });

  it('refuses a shard that is not the one the manifest describes', () => {
    assert.throws(
      () => decodeLogitShard(good, key, { start: 128, end: 133 }),
      formatError(key, /header\.start: expected 128, got 0/),
    );
    assert.throws(
      () => decodeLogitShard(good, key, { k: 5 }),
      formatError(key, /header\.k: expected 5, got 3/),
    );
    assert.throws(
      () => decodeLogitShard(good, key, { format: 'float16' }),
      formatError(key, /header\.format: expected "float16", got "top-k"/),
    );
  });

  it('refuses out-of-range classes, repeated classes and non-probabilities in a top-k payload', () => {
    const idxAt = payloadOffset + 5 * 3 * 2; // indices section: [5, 3] uint8
    const outOfRange = Uint8Array.from(good);
    outOfRange[idxAt + 4] = 10;
    assert.throws(
      () => decodeLogitShard(outOfRange, key),
      formatError(key, /indices\[1\]\[1\] \(sample 1\) is 10, not < 10/),
    );
    const repeated = Uint8Array.from(good);
    repeated[idxAt + 1] = repeated[idxAt] as number;
    assert.throws(
      () => decodeLogitShard(repeated, key),
      formatError(key, /indices\[0\] \(sample 0\) lists class \d+ twice/),
    );
    const negative = Uint8Array.from(good);
    new DataView(negative.buffer).setUint16(payloadOffset + 2, 0xbc00, true); // -1
    assert.throws(
      () => decodeLogitShard(negative, key),
      formatError(key, /probabilities\[0\]\[1\] \(sample 0\) is -1, not a probability/),
    );
  });
});

describe('logit manifest', () => {
  const sha = (c: string): string => c.repeat(64);
  const input: LogitManifestInput = {
    teacher: { name: 'cnn-small', weightsSha256: sha('a') },
    dataset: 'mnist',
    split: 'train',
    augmentation: { policy: 'none', seed: 0 },
    format: 'top-k',
    k: 3,
    classes: 10,
    sampleCount: 250,
    shardSize: 100,
    shards: [
      { key: 'logits/h/mnist/top-3/shard-0.bin', sha256: sha('1'), bytes: 1000, start: 0, end: 100 },
      { key: 'logits/h/mnist/top-3/shard-1.bin', sha256: sha('2'), bytes: 1000, start: 100, end: 200 },
      { key: 'logits/h/mnist/top-3/shard-2.bin', sha256: sha('3'), bytes: 550, start: 200, end: 250 },
    ],
  };

  it('builds and parses a manifest whose entries mirror its shards', () => {
    const m = buildLogitManifest(input);
    assert.equal(m.kind, 'teacher-logits');
    assert.deepEqual(m.entries[2], { key: input.shards[2]?.key, sha256: sha('3'), bytes: 550 });
    assert.deepEqual(parseLogitManifest(JSON.parse(JSON.stringify(m)), 'm.json'), m);
  });

  it('names the field of an invalid manifest', () => {
    const m = buildLogitManifest(input);
    const bad = (patch: object, field: RegExp): void => {
      assert.throws(
        () => parseLogitManifest({ ...m, ...patch }, 'logits/h/m.json'),
        formatError('logits/h/m.json', field),
      );
    };
    bad({ k: undefined }, /k: required for format top-k/);
    bad({ k: 11 }, /k: 11 exceeds classes 10/);
    bad({ format: 'float32' }, /k: only meaningful for format top-k/);
    bad({ augmentation: { policy: 'none' } }, /augmentation\.seed/);
    bad(
      { teacher: { name: 'x', weightsSha256: 'abc' } },
      /teacher\.weightsSha256: must be 64 lowercase hex digits/,
    );
    bad({ sampleCount: 301 }, /301 samples in shards of 100 make 4 shards, the manifest lists 3/);
    bad({ sampleCount: 260 }, /shards\.2\.end: expected 260, got 250/);
    bad(
      { shards: [input.shards[1], input.shards[0], input.shards[2]] },
      /shards\.0\.start: expected 0, got 100/,
    );
    bad({ entries: m.entries.slice(0, 2) }, /entries: lists 2 objects for 3 shards/);
    bad({ entries: [m.entries[0], { ...m.entries[1], bytes: 999 }, m.entries[2]] }, /entries\.1\.bytes/);
    assert.throws(() => buildLogitManifest({ ...input, shardSize: 0 }), StoreUsageError);
  });

  it('gives every dataset view its own content-addressed keys', () => {
    const id = {
      teacherWeightsSha256: sha('a'),
      dataset: 'mnist',
      split: 'train',
      augmentation: { policy: 'crop-flip', seed: 1 },
      format: 'top-k' as const,
      k: 3,
      classes: 10,
      sampleCount: 60000,
      shardSize: 4096,
    };
    const a = logitSetKeys(id);
    assert.match(a.manifestKey, /^logits\/[0-9a-f]{64}\/mnist\/top-3\/manifest\.json$/);
    assert.equal(a.shardKey(2), a.manifestKey.replace('manifest.json', 'shard-2.bin'));
    assert.equal(logitSetKeys({ ...id }).hash, a.hash);
    for (const other of [
      { augmentation: { policy: 'crop-flip', seed: 2 } },
      { split: 'test' },
      { k: 5 },
      { shardSize: 1024 },
      { teacherWeightsSha256: sha('b') },
    ])
      assert.notEqual(logitSetKeys({ ...id, ...other }).hash, a.hash, JSON.stringify(other));
  });
});

describe('reconstruction error of a stored format', () => {
  const C = 10;
  const logits = randomLogits(200, C, 7);
  const full = toProbabilities({ kind: 'logits', classes: C, values: logits });
  const stored = (format: LogitFormat, k?: number): Float32Array =>
    toProbabilities(
      decodeLogitShard(
        encodeLogitShard({ format, classes: C, ...(k !== undefined ? { k } : {}), start: 0, logits }),
        'x',
      ),
    );

  it('is zero for the same distribution and matches a hand-computed KL', () => {
    assert.deepEqual(reconstructionError(full, full, C), { rows: 200, meanKl: 0, maxKl: 0 });
    const p = Float32Array.of(0.5, 0.5);
    const q = Float32Array.of(0.25, 0.75);
    const want = 0.5 * Math.log(0.5 / 0.25) + 0.5 * Math.log(0.5 / 0.75);
    const got = reconstructionError(p, q, 2);
    assert.ok(Math.abs(got.meanKl - want) < 1e-7, `${got.meanKl} vs ${want}`);
    assert.equal(got.maxKl, got.meanKl);
  });

  it('orders the formats: float32 exact, float16 tiny, top-k shrinking as k grows', () => {
    assert.equal(reconstructionError(full, stored('float32'), C).meanKl, 0);
    const half = reconstructionError(full, stored('float16'), C).meanKl;
    assert.ok(half > 0 && half < 1e-5, `float16 KL ${half}`);
    const kls = [1, 3, 5, 9].map((k) => reconstructionError(full, stored('top-k', k), C).meanKl);
    for (let i = 1; i < kls.length; i++) assert.ok(kls[i]! < kls[i - 1]!, `top-k KLs ${kls.join(', ')}`);
    assert.ok(kls[3]! < 1e-3 && kls[0]! > 0.01, `top-k KLs ${kls.join(', ')}`);
  });

  it('floors a zero reconstruction instead of returning infinity, unless asked not to', () => {
    const p = Float32Array.of(0.9, 0.1);
    const q = Float32Array.of(1, 0);
    assert.ok(Number.isFinite(reconstructionError(p, q, 2).meanKl));
    assert.equal(reconstructionError(p, q, 2, 0).meanKl, Infinity);
  });

  it('refuses rows that do not line up, naming both sizes', () => {
    assert.throws(() => reconstructionError(full, full.subarray(10), C), /2000 values, stored 1990/);
    assert.throws(() => reconstructionError(full, full, 7), /rows of 7 classes/);
  });
});
