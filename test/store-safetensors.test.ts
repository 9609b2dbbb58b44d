// The safetensors codec, the key layout, canonical hashing and the S3 environment parser:
// everything in store/ that needs no server.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  canonicalJson,
  checkpointKey,
  contentHash,
  decodeSafetensors,
  encodeSafetensors,
  experimentKey,
  finalWeightsKey,
  latestCheckpointKey,
  levelTensorKey,
  logitManifestKey,
  logitShardKey,
  parseCheckpointStep,
  runMetricsKey,
  s3ConfigFromEnv,
  S3ConfigError,
  SafetensorsError,
  StoreUsageError,
  type NamedTensors,
} from '../store/index.js';

function bytesOf(a: Float32Array | Float64Array | Int32Array | Uint8Array): Buffer {
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** A file with an arbitrary header text and data section, for malformed-input cases. */
function rawFile(header: string, data: number[] = []): Uint8Array {
  const h = Buffer.from(header, 'utf8');
  const out = Buffer.alloc(8 + h.length + data.length);
  out.writeBigUInt64LE(BigInt(h.length), 0);
  h.copy(out, 8);
  Buffer.from(data).copy(out, 8 + h.length);
  return out;
}

function pythonHas(module: string | null): boolean {
  const r = spawnSync('python3', ['-c', module ? `import ${module}` : 'pass'], { encoding: 'utf8' });
  return r.status === 0;
}

// Covers every dtype, a scalar, an empty tensor, an odd-length U8 tensor that leaves the
// following F32 data unaligned in the file, and names that JS objects would reorder.
function sampleSet(): NamedTensors {
  const special = new Float32Array([1.5, -0, Infinity, -Infinity, 1e-45, 3.4028234663852886e38, Number.NaN]);
  // A NaN with a payload: a codec that converts values instead of copying bytes loses it.
  new DataView(special.buffer).setUint32(6 * 4, 0x7fc00abc, true);
  return {
    mask: { dtype: 'uint8', shape: [3], data: new Uint8Array([1, 0, 1]) },
    weights: { dtype: 'float32', shape: [7], data: special },
    '10': { dtype: 'int32', shape: [2, 2], data: new Int32Array([-2147483648, 2147483647, 0, -1]) },
    '9': { dtype: 'float32', shape: [], data: new Float32Array([0.1]) },
    empty: { dtype: 'float32', shape: [0, 3], data: new Float32Array(0) },
    // Float64 (the geometry measures' checkpointed vectors): a value float32 cannot hold.
    state: { dtype: 'float64', shape: [3], data: new Float64Array([0.1, -1e-300, 2 ** 60 + 1024]) },
  };
}

describe('safetensors encoding', () => {
  it('writes exactly the bytes the format specifies (hand-computed example)', () => {
    const file = encodeSafetensors(
      {
        b: { dtype: 'float32', shape: [1], data: new Float32Array([1]) },
        a: { dtype: 'uint8', shape: [2], data: new Uint8Array([1, 2]) },
      },
      { k: 'v' },
    );
    // 131 bytes of JSON (metadata first, then tensors by name, data in the same order),
    // padded with 5 spaces to 136 so the data starts 8-byte aligned.
    const json =
      '{"__metadata__":{"k":"v"},' +
      '"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},' +
      '"b":{"dtype":"F32","shape":[1],"data_offsets":[2,6]}}';
    assert.equal(json.length, 131);
    const expected = Buffer.concat([
      Buffer.from([136, 0, 0, 0, 0, 0, 0, 0]), // u64 LE header length
      Buffer.from(json, 'ascii'),
      Buffer.from('     ', 'ascii'),
      Buffer.from([0x01, 0x02]), // a: U8 [1, 2]
      Buffer.from([0x00, 0x00, 0x80, 0x3f]), // b: F32 1.0, little-endian IEEE 754
    ]);
    assert.equal(expected.length, 150);
    assert.deepEqual(Buffer.from(file), expected);
  });

  it('omits __metadata__ when there is none and pads an already aligned header with nothing', () => {
    const file = Buffer.from(encodeSafetensors({}));
    assert.deepEqual(
      file,
      Buffer.from([8, 0, 0, 0, 0, 0, 0, 0, 0x7b, 0x7d, 0x20, 0x20, 0x20, 0x20, 0x20, 0x20]),
    );
    assert.deepEqual(decodeSafetensors(file), { tensors: {}, metadata: {} });
  });

  it('round-trips every dtype bit-exactly, including NaN payloads and -0, into aligned arrays', () => {
    const input = sampleSet();
    const meta = { format: 'pt', note: 'ünïcødé ✓', '10': 'ten' };
    const file = encodeSafetensors(input, meta);
    assert.equal(new DataView(file.buffer).getBigUint64(0, true) % 8n, 0n);
    const { tensors, metadata } = decodeSafetensors(file);
    assert.deepEqual(metadata, meta);
    assert.deepEqual(Object.keys(tensors).sort(), Object.keys(input).sort());
    for (const [name, t] of Object.entries(input)) {
      const got = tensors[name];
      assert.ok(got, name);
      assert.equal(got.dtype, t.dtype, name);
      assert.deepEqual(got.shape, t.shape, name);
      assert.equal(got.data.constructor, t.data.constructor, name);
      assert.equal(got.data.byteOffset % got.data.BYTES_PER_ELEMENT, 0, `${name} aligned`);
      assert.deepEqual(bytesOf(got.data), bytesOf(t.data), `${name} bytes`);
    }
  });

  it('decodes a file whose tensors are not in name order (as other writers produce)', () => {
    const header =
      '{"z":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"I32","shape":[1],"data_offsets":[1,5]}}';
    const { tensors } = decodeSafetensors(rawFile(header, [9, 7, 0, 0, 0]));
    assert.deepEqual([...(tensors.z?.data ?? [])], [9]);
    assert.deepEqual([...(tensors.a?.data ?? [])], [7]);
  });

  it('copies views of larger buffers correctly', () => {
    const backing = new Float32Array([9, 9, 1, 2, 9]);
    const file = encodeSafetensors({ w: { dtype: 'float32', shape: [2], data: backing.subarray(2, 4) } });
    assert.deepEqual([...(decodeSafetensors(file).tensors.w?.data ?? [])], [1, 2]);
  });

  it('refuses inconsistent input with the tensor named', () => {
    const cases: [NamedTensors, RegExp][] = [
      [
        { w: { dtype: 'float32', shape: [3], data: new Float32Array(2) } },
        /tensor 'w'.*3 elements but data has 2/,
      ],
      [
        { w: { dtype: 'float32', shape: [2], data: new Int32Array(2) } },
        /tensor 'w'.*needs a Float32Array, got Int32Array/,
      ],
      [{ w: { dtype: 'int32', shape: [-1], data: new Int32Array(0) } }, /tensor 'w'.*non-negative integers/],
      [{ __metadata__: { dtype: 'uint8', shape: [0], data: new Uint8Array(0) } }, /invalid tensor name/],
    ];
    for (const [set, re] of cases)
      assert.throws(
        () => encodeSafetensors(set),
        (e: unknown) => e instanceof SafetensorsError && re.test(e.message),
      );
  });
});

describe('safetensors decoding validation', () => {
  const u8 = (offsets: string, shape = '[2]'): string =>
    `{"t":{"dtype":"U8","shape":${shape},"data_offsets":${offsets}}}`;
  const cases: [string, Uint8Array, RegExp][] = [
    ['a truncated length field', new Uint8Array(5), /shorter than the 8-byte/],
    [
      'a header length beyond the file',
      (() => {
        const f = rawFile('{}');
        new DataView(f.buffer).setUint32(0, 1000, true);
        return f;
      })(),
      /header length 1000 exceeds/,
    ],
    ['a header that is not JSON', rawFile('{not json'), /not valid JSON/],
    ['a header that is not an object', rawFile('[1]'), /does not start with '\{'/],
    [
      'an unsupported dtype',
      rawFile('{"h":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}', [0, 0]),
      /tensor 'h': unsupported dtype F16/,
    ],
    [
      'an I64 tensor',
      rawFile('{"h":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}', [0, 0, 0, 0, 0, 0, 0, 0]),
      /unsupported dtype I64/,
    ],
    [
      'an unknown dtype',
      rawFile('{"h":{"dtype":"Q4","shape":[1],"data_offsets":[0,1]}}', [0]),
      /unknown dtype Q4/,
    ],
    [
      'a size that does not match dtype × shape',
      rawFile(u8('[0,3]'), [1, 2, 3]),
      /needs 2 bytes but data_offsets \[0, 3\] span 3/,
    ],
    ['offsets out of range', rawFile(u8('[0,2]'), [1]), /cover 2 bytes of data but the data section has 1/],
    ['trailing bytes', rawFile(u8('[0,2]'), [1, 2, 3]), /cover 2 bytes of data but the data section has 3/],
    ['a hole', rawFile(u8('[1,3]'), [0, 1, 2]), /begin at 1, expected 0/],
    [
      'overlapping tensors',
      rawFile(
        '{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}',
        [0, 1, 2],
      ),
      /tensor 'b': data_offsets begin at 1, expected 2/,
    ],
    ['a negative dimension', rawFile(u8('[0,2]', '[-2]'), [1, 2]), /tensor 't': shape/],
    ['a missing field', rawFile('{"t":{"dtype":"U8","shape":[1]}}', [1]), /tensor 't': data_offsets/],
    ['non-string metadata', rawFile('{"__metadata__":{"n":1}}'), /__metadata__\.n must be a string/],
  ];
  for (const [what, file, re] of cases) {
    it(`refuses ${what}`, () => {
      assert.throws(
        () => decodeSafetensors(file),
        (e: unknown) => e instanceof SafetensorsError && re.test(e.message),
      );
    });
  }

  it('keeps a "__proto__" name or metadata key as ordinary data', () => {
    const file = rawFile(
      '{"__metadata__":{"__proto__":"x"},"__proto__":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}',
      [5],
    );
    const { tensors, metadata } = decodeSafetensors(file);
    assert.deepEqual(Object.keys(metadata), ['__proto__']);
    assert.equal(Object.getPrototypeOf(tensors), Object.prototype);
    assert.deepEqual(Object.keys(tensors), ['__proto__']);
  });
});

describe('safetensors files open in Python', () => {
  const dir = mkdtempSync(join(tmpdir(), 'store-safetensors-'));
  const file = join(dir, 'sample.safetensors');
  const input = sampleSet();
  writeFileSync(file, encodeSafetensors(input, { producer: 'lth' }));
  const expected = Object.fromEntries(
    Object.entries(input).map(([name, t]) => [
      name,
      { shape: t.shape, hex: bytesOf(t.data).toString('hex') },
    ]),
  );
  process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

  it('the standard library parses the header and data per the spec', (t) => {
    if (!pythonHas(null)) return t.skip('python3 is not available on this machine');
    const script = `
import json, struct, sys
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
meta = header.pop('__metadata__', {})
size = {'F32': 4, 'F64': 8, 'I32': 4, 'U8': 1}
out = {}
for name, h in header.items():
    b, e = h['data_offsets']
    count = 1
    for d in h['shape']: count *= d
    assert e - b == count * size[h['dtype']], name
    out[name] = {'shape': h['shape'], 'hex': data[b:e].hex()}
print(json.dumps({'meta': meta, 'tensors': out}))
`;
    const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), { meta: { producer: 'lth' }, tensors: expected });
  });

  it('numpy reads every tensor with the right dtype, shape and values', (t) => {
    if (!pythonHas('numpy'))
      return t.skip('numpy is not installed for python3 on this machine; not installing it for a test');
    const script = `
import json, struct, sys
import numpy as np
raw = open(sys.argv[1], 'rb').read()
(n,) = struct.unpack('<Q', raw[:8])
header = json.loads(raw[8:8 + n])
header.pop('__metadata__', None)
dt = {'F32': '<f4', 'F64': '<f8', 'I32': '<i4', 'U8': 'u1'}
out = {}
for name, h in header.items():
    b, e = h['data_offsets']
    d = np.dtype(dt[h['dtype']])
    a = np.frombuffer(raw, dtype=d, count=(e - b) // d.itemsize, offset=8 + n + b) if e > b else np.zeros(0, dtype=d)
    a = a.reshape(h['shape'])
    out[name] = {'shape': list(a.shape), 'hex': a.tobytes().hex()}
print(json.dumps(out))
`;
    const r = spawnSync('python3', ['-c', script, file], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), expected);
  });
});

describe('key layout', () => {
  it('builds the documented readable paths', () => {
    assert.equal(levelTensorKey('exp1', 3, 'mask'), 'experiments/exp1/level-3/mask.safetensors');
    assert.equal(experimentKey('exp1', 'level-0', 'metrics.json'), 'experiments/exp1/level-0/metrics.json');
    assert.equal(checkpointKey('run-7', 1200), 'runs/run-7/checkpoints/step-1200.safetensors');
    assert.equal(finalWeightsKey('run-7'), 'runs/run-7/final/weights.safetensors');
    assert.equal(runMetricsKey('run-7'), 'runs/run-7/metrics.json');
    assert.equal(logitShardKey('abc123', 'cifar10', 'f32', 4), 'logits/abc123/cifar10/f32/shard-4.bin');
    assert.equal(logitManifestKey('abc123', 'cifar10', 'f32'), 'logits/abc123/cifar10/f32/manifest.json');
  });

  it('refuses ids that would escape their folder', () => {
    for (const bad of ['', '..', 'a/b', '.hidden', 'a b']) {
      assert.throws(
        () => checkpointKey(bad, 1),
        (e: unknown) => e instanceof StoreUsageError && /runId/.test(e.message),
        bad,
      );
    }
    assert.throws(() => checkpointKey('r', -1), /step must be a non-negative integer/);
    assert.throws(() => levelTensorKey('e', 1.5, 'weights'), /level must be a non-negative integer/);
  });

  it('finds the latest checkpoint numerically, not lexically', () => {
    const keys = [
      checkpointKey('r', 9),
      checkpointKey('r', 10),
      'runs/r/checkpoints/notes.txt',
      checkpointKey('r', 2),
    ];
    assert.equal(latestCheckpointKey(keys), checkpointKey('r', 10));
    assert.equal(latestCheckpointKey([]), null);
    assert.equal(parseCheckpointStep(checkpointKey('r', 0)), 0);
    assert.equal(parseCheckpointStep('runs/r/checkpoints/step-01.safetensors'), null);
  });
});

describe('canonical JSON and content hashes', () => {
  it('does not depend on key order, and drops undefined properties as JSON does', () => {
    const a = { seed: 1, model: { width: 64, depth: 2 }, parents: ['x', 'y'], note: undefined };
    const b = { parents: ['x', 'y'], model: { depth: 2, width: 64 }, seed: 1 };
    assert.equal(contentHash(a), contentHash(b));
    assert.equal(canonicalJson(a), '{"model":{"depth":2,"width":64},"parents":["x","y"],"seed":1}');
    // The hash a workflow computes must equal the one an activity computes after the
    // value crossed Temporal's JSON payload converter.
    assert.equal(contentHash(JSON.parse(JSON.stringify(a))), contentHash(a));
  });

  it('is SHA-256 of the compact canonical text, sorting keys by code unit', () => {
    assert.equal(
      canonicalJson({ b: 1, '10': 2, '9': 3, a: [true, null, 'é'] }),
      '{"10":2,"9":3,"a":[true,null,"é"],"b":1}',
    );
    // echo -n '{"a":1}' | sha256sum
    assert.equal(contentHash({ a: 1 }), '015abd7f5cc57a2dd94b7590f04ad8084273905ee33ec5cebeae62276a97f862');
    assert.notEqual(contentHash({ a: 1 }), contentHash({ a: '1' }));
    assert.notEqual(contentHash([1, 2]), contentHash([2, 1]));
  });

  it('refuses values JSON would silently change, naming where they are', () => {
    const cases: [unknown, RegExp][] = [
      [{ loss: Number.NaN }, /\$\.loss: NaN/],
      [{ x: [1, Infinity] }, /\$\.x\[1\]: Infinity/],
      [{ m: new Map() }, /\$\.m: a Map/],
      [{ t: new Float32Array(2) }, /\$\.t: a Float32Array/],
      [{ n: 10n }, /\$\.n: a bigint/],
      [[undefined], /\$\[0\]: undefined/],
    ];
    for (const [v, re] of cases)
      assert.throws(
        () => contentHash(v),
        (e: unknown) => e instanceof StoreUsageError && re.test(e.message),
      );
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    assert.throws(() => contentHash(cyclic), /\$\.self: cyclic reference/);
    assert.equal(canonicalJson({ at: new Date(0) }), '{"at":"1970-01-01T00:00:00.000Z"}');
  });
});

describe('S3 configuration from the environment', () => {
  const secret = 'do-not-print-me';
  const base = { S3_ENDPOINT: 'http://127.0.0.1:9000', S3_ACCESS_KEY: 'ak', S3_SECRET_KEY: secret };

  it('is null when S3_ENDPOINT is unset or empty', () => {
    assert.equal(s3ConfigFromEnv({}), null);
    assert.equal(s3ConfigFromEnv({ S3_ENDPOINT: '', S3_ACCESS_KEY: 'ak' }), null);
  });

  it('takes TLS and the default port from the scheme, the bucket defaults to lth', () => {
    assert.deepEqual(s3ConfigFromEnv(base), {
      endPoint: '127.0.0.1',
      port: 9000,
      useSSL: false,
      accessKey: 'ak',
      secretKey: secret,
      bucket: 'lth',
    });
    assert.deepEqual(
      s3ConfigFromEnv({
        ...base,
        S3_ENDPOINT: 'https://s3.example.org',
        S3_BUCKET: 'my-bucket',
        S3_REGION: 'eu-west-1',
        S3_CA_FILE: '/etc/ca.pem',
      }),
      {
        endPoint: 's3.example.org',
        port: 443,
        useSSL: true,
        accessKey: 'ak',
        secretKey: secret,
        bucket: 'my-bucket',
        region: 'eu-west-1',
        caFile: '/etc/ca.pem',
      },
    );
    assert.equal(s3ConfigFromEnv({ ...base, S3_ENDPOINT: 'http://[::1]:9000/' })?.endPoint, '::1');
  });

  it('names every offending variable, and never the secret', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [
        { S3_ENDPOINT: 'localhost:9000' },
        /S3_ENDPOINT scheme must be http or https.*S3_ACCESS_KEY is required.*S3_SECRET_KEY is required/,
      ],
      [{ ...base, S3_ENDPOINT: 'not a url' }, /S3_ENDPOINT must be a URL/],
      [{ ...base, S3_ENDPOINT: 'http://h:9000/lth' }, /S3_ENDPOINT must be scheme:\/\/host\[:port\] only/],
      [{ ...base, S3_BUCKET: 'Bad_Bucket' }, /S3_BUCKET must be a valid S3 bucket name/],
      [{ ...base, S3_CA_FILE: '/ca.pem' }, /S3_CA_FILE is set but S3_ENDPOINT uses http/],
    ];
    for (const [env, re] of cases) {
      assert.throws(
        () => s3ConfigFromEnv(env),
        (e: unknown) =>
          e instanceof S3ConfigError && re.test(e.message) && !e.message.includes(secret) && e.nonRetryable,
      );
    }
  });
});
