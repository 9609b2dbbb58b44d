/**
 * One shard of precomputed teacher outputs: the outputs for the contiguous sample range
 * [start, end) of one teacher on one dataset view, in one of three formats.
 *
 * | format    | stored per sample                                  | bytes per sample          | decode returns        |
 * | --------- | -------------------------------------------------- | ------------------------- | --------------------- |
 * | `float32` | the C raw logits, IEEE single                      | 4·C                       | logits                |
 * | `float16` | the C raw logits, IEEE half (round to nearest even) | 2·C                       | logits                |
 * | `top-k`   | the k largest softmax probabilities (T = 1), IEEE   | 2·k + k·(C ≤ 256 ? 1 : 2) | probabilities, full C |
 * |           | half, in decreasing order, plus their class indices |                           |                       |
 * |           | (uint8 when C ≤ 256, else uint16)                   |                           |                       |
 *
 * `top-k` follows TinyViT (Wu et al., ECCV 2022): it stores *probabilities*, not logits, and a
 * reader rebuilds a full distribution by spreading the leftover mass 1 − Σ top-k evenly over
 * the other C − k classes. Logits cannot be recovered from it, so `decode` returns
 * probabilities for top-k and logits for the other two; `toProbabilities` turns either into
 * probabilities (with a temperature), so a reader that wants probabilities need not care.
 *
 * Binary layout (all integers little-endian):
 *
 *   offset 0   8 bytes  magic "LTHLOGIT"
 *   offset 8   u32      layout version (1)
 *   offset 12  u32      N, the header length, a multiple of 8
 *   offset 16  N bytes  UTF-8 JSON header, padded with spaces
 *   offset 16+N         payload: the header's sections, back to back, 8-byte aligned start
 *
 * Header: {"version":1,"format","classes","k" (top-k only),"start","end","stores":"logits"|
 * "probabilities","sections":[{"name","dtype","shape","offset","bytes"}]}, offsets relative to
 * the payload. Sections are row-major [samples, ·]: `logits` [n, C] (float32 or float16), or
 * `probabilities` [n, k] float16 followed by `indices` [n, k] uint8/uint16. A file is exactly
 * 16 + N + n·bytesPerSample bytes; the decoder checks that, and that the sections are exactly
 * the ones the format implies, and throws ArtifactFormatError naming the key and the field.
 */
import { z } from 'zod';
import { ArtifactFormatError, formatIssues, StoreUsageError } from './errors.js';

export const LOGIT_FORMATS = ['float32', 'float16', 'top-k'] as const;
export type LogitFormat = (typeof LOGIT_FORMATS)[number];

/** What a decoded shard (or a batch) holds per sample: C logits or a C-class distribution. */
export type LogitKind = 'logits' | 'probabilities';

export const LOGIT_SHARD_MAGIC = 'LTHLOGIT';
export const LOGIT_SHARD_VERSION = 1;
const PREAMBLE_BYTES = 16;
// Header fields are a handful of small numbers; anything bigger is a corrupt length field.
const MAX_HEADER_BYTES = 64 * 1024;
/** Class indices are stored as uint16 at most. */
export const MAX_LOGIT_CLASSES = 65536;

// ---- float16 ----------------------------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/**
 * The IEEE 754 binary16 bits of `x` rounded to float32 first (the teacher's outputs are
 * float32), then to half with round-to-nearest, ties-to-even. Keeps the sign of zero,
 * rounds into the subnormals (down to 2^-24) and to ±0 below half of that, overflows to ±inf
 * (from 65520 up), and maps NaN to a quiet NaN keeping the top payload bits.
 */
export function float32ToFloat16Bits(x: number): number {
  f32[0] = x;
  const bits = u32[0] as number;
  const sign = (bits >>> 16) & 0x8000;
  const exp = (bits >>> 23) & 0xff;
  const mant = bits & 0x7fffff;
  if (exp === 0xff) return mant !== 0 ? sign | 0x7e00 | (mant >>> 13) : sign | 0x7c00;
  const e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Below 2^-25 (half the smallest subnormal, a tie that goes to the even 0) it is ±0.
    if (e < -10) return sign;
    const m = mant | 0x800000;
    const shift = 14 - e;
    let h = m >>> shift;
    const rem = m & ((1 << shift) - 1);
    const halfway = 1 << (shift - 1);
    if (rem > halfway || (rem === halfway && (h & 1) === 1)) h++;
    // A carry out of the subnormals gives 0x400, the smallest normal: the right encoding.
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  // A carry into the exponent is right too, up to 0x7c00 (inf) for values ≥ 65520.
  if (rem > 0x1000 || (rem === 0x1000 && (h & 1) === 1)) h++;
  return sign | h;
}

/** The value of binary16 bits `h` (exact: every half is a float32 and a double). */
export function float16BitsToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  if (e === 0x1f) return m !== 0 ? Number.NaN : sign * Infinity;
  return sign * (1024 + m) * 2 ** (e - 25);
}

let HALF_TABLE: Float32Array | null = null;

/** All 65536 halves as float32, built on first use (256 KiB), for decoding whole shards. */
function halfTable(): Float32Array {
  if (!HALF_TABLE) {
    HALF_TABLE = new Float32Array(65536);
    for (let h = 0; h < 65536; h++) HALF_TABLE[h] = float16BitsToNumber(h);
  }
  return HALF_TABLE;
}

/** `x` rounded to the nearest half, as a number. */
export function roundToFloat16(x: number): number {
  return float16BitsToNumber(float32ToFloat16Bits(x));
}

// ---- sizes ------------------------------------------------------------------

type IndexDType = 'uint8' | 'uint16';

function indexDType(classes: number): IndexDType {
  return classes <= 256 ? 'uint8' : 'uint16';
}

function checkShape(format: LogitFormat, classes: number, k: number | undefined): void {
  if (!(LOGIT_FORMATS as readonly string[]).includes(format))
    throw new StoreUsageError(
      `format must be one of ${LOGIT_FORMATS.join(', ')}, got ${JSON.stringify(format)}`,
    );
  if (!Number.isSafeInteger(classes) || classes < 1 || classes > MAX_LOGIT_CLASSES)
    throw new StoreUsageError(`classes must be an integer in [1, ${MAX_LOGIT_CLASSES}], got ${classes}`);
  if (format === 'top-k') {
    if (k === undefined || !Number.isSafeInteger(k) || k < 1 || k > classes)
      throw new StoreUsageError(`top-k needs an integer k in [1, classes = ${classes}], got ${k}`);
  } else if (k !== undefined) {
    throw new StoreUsageError(`k is only meaningful for the top-k format, not ${format}`);
  }
}

/**
 * Exact payload bytes per sample of a format: 4·C (float32), 2·C (float16),
 * 2·k + k·(C ≤ 256 ? 1 : 2) (top-k). A shard is 16 + header + samples · this.
 */
export function bytesPerSample(format: LogitFormat, classes: number, k?: number): number {
  checkShape(format, classes, k);
  switch (format) {
    case 'float32':
      return 4 * classes;
    case 'float16':
      return 2 * classes;
    case 'top-k':
      return (k as number) * (2 + (indexDType(classes) === 'uint8' ? 1 : 2));
  }
}

// ---- header -----------------------------------------------------------------

export interface LogitShardSection {
  name: 'logits' | 'probabilities' | 'indices';
  dtype: 'float32' | 'float16' | IndexDType;
  shape: [number, number];
  offset: number;
  bytes: number;
}

export interface LogitShardHeader {
  version: number;
  format: LogitFormat;
  classes: number;
  k?: number;
  start: number;
  end: number;
  stores: LogitKind;
  sections: LogitShardSection[];
}

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

const headerSchema = z.strictObject({
  version: z.literal(LOGIT_SHARD_VERSION),
  format: z.enum(LOGIT_FORMATS),
  classes: z.number().int().min(1).max(MAX_LOGIT_CLASSES),
  k: z.number().int().min(1).optional(),
  start: count,
  end: count,
  stores: z.enum(['logits', 'probabilities']),
  sections: z.array(
    z.strictObject({
      name: z.enum(['logits', 'probabilities', 'indices']),
      dtype: z.enum(['float32', 'float16', 'uint8', 'uint16']),
      shape: z.tuple([count, count]),
      offset: count,
      bytes: count,
    }),
  ),
});

/** The header a shard of this shape must carry, field for field. */
function expectedHeader(
  format: LogitFormat,
  classes: number,
  k: number | undefined,
  start: number,
  end: number,
): LogitShardHeader {
  const n = end - start;
  let sections: LogitShardSection[];
  if (format === 'top-k') {
    const kk = k as number;
    const idx = indexDType(classes);
    const valueBytes = n * kk * 2;
    sections = [
      { name: 'probabilities', dtype: 'float16', shape: [n, kk], offset: 0, bytes: valueBytes },
      {
        name: 'indices',
        dtype: idx,
        shape: [n, kk],
        offset: valueBytes,
        bytes: n * kk * (idx === 'uint8' ? 1 : 2),
      },
    ];
  } else {
    const width = format === 'float32' ? 4 : 2;
    sections = [
      { name: 'logits', dtype: format, shape: [n, classes], offset: 0, bytes: n * classes * width },
    ];
  }
  return {
    version: LOGIT_SHARD_VERSION,
    format,
    classes,
    ...(format === 'top-k' ? { k } : {}),
    start,
    end,
    stores: format === 'top-k' ? 'probabilities' : 'logits',
    sections,
  };
}

/** The first field where `got` differs from `want`, as `path: expected X, got Y`; null if equal. */
function firstDifference(want: unknown, got: unknown, path: string): string | null {
  if (typeof want === 'object' && want !== null && typeof got === 'object' && got !== null) {
    if (Array.isArray(want) !== Array.isArray(got))
      return `${path}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
    if (Array.isArray(want) && Array.isArray(got) && want.length !== got.length)
      return `${path}: expected ${want.length} entries, got ${got.length}`;
    const keys = new Set([...Object.keys(want), ...Object.keys(got)]);
    for (const key of keys) {
      const sub = Array.isArray(want) ? `${path}[${key}]` : path ? `${path}.${key}` : key;
      const d = firstDifference(
        (want as Record<string, unknown>)[key],
        (got as Record<string, unknown>)[key],
        sub,
      );
      if (d) return d;
    }
    return null;
  }
  return Object.is(want, got)
    ? null
    : `${path}: expected ${JSON.stringify(want)}, got ${JSON.stringify(got)}`;
}

// ---- encode -----------------------------------------------------------------

export interface EncodeLogitShardInput {
  format: LogitFormat;
  classes: number;
  /** Required for top-k, refused otherwise. */
  k?: number;
  /** Index of the first sample; the shard covers [start, start + samples). */
  start: number;
  /** The teacher's raw logits, row-major [samples, classes]; every value finite. */
  logits: Float32Array;
}

function softmaxRow(logits: Float32Array, row: number, classes: number, out: Float64Array): void {
  let max = -Infinity;
  const base = row * classes;
  for (let c = 0; c < classes; c++) max = Math.max(max, logits[base + c] as number);
  let sum = 0;
  for (let c = 0; c < classes; c++) {
    const e = Math.exp((logits[base + c] as number) - max);
    out[c] = e;
    sum += e;
  }
  for (let c = 0; c < classes; c++) out[c] = (out[c] as number) / sum;
}

/**
 * Encodes one shard. Logits must be finite (a teacher that produced NaN or ±inf is broken,
 * and storing it would poison every student); float16 also refuses logits beyond ±65504
 * (they would become ±inf). Top-k ranks classes by probability, ties by lower index.
 */
export function encodeLogitShard(input: EncodeLogitShardInput): Uint8Array {
  const { format, classes, k, start, logits } = input;
  checkShape(format, classes, k);
  if (!Number.isSafeInteger(start) || start < 0)
    throw new StoreUsageError(`start must be a non-negative integer, got ${start}`);
  if (!(logits instanceof Float32Array))
    throw new StoreUsageError(
      `logits must be a Float32Array, got ${(logits as unknown as { constructor?: { name?: string } } | null)?.constructor?.name ?? typeof logits}`,
    );
  if (logits.length === 0 || logits.length % classes !== 0)
    throw new StoreUsageError(
      `logits hold ${logits.length} values, not a positive multiple of classes = ${classes}`,
    );
  const n = logits.length / classes;
  for (let i = 0; i < logits.length; i++) {
    const v = logits[i] as number;
    if (!Number.isFinite(v))
      throw new StoreUsageError(
        `logit of sample ${start + Math.floor(i / classes)}, class ${i % classes} is ${v}: teacher outputs must be finite`,
      );
    if (format === 'float16' && (float32ToFloat16Bits(v) & 0x7c00) === 0x7c00)
      throw new StoreUsageError(
        `logit of sample ${start + Math.floor(i / classes)}, class ${i % classes} is ${v}: beyond the float16 range (±65504)`,
      );
  }

  const header = expectedHeader(format, classes, k, start, start + n);
  const headerRaw = Buffer.from(JSON.stringify(header), 'utf8');
  const headerLen = Math.ceil(headerRaw.length / 8) * 8;
  const payloadBytes = n * bytesPerSample(format, classes, k);
  const out = new Uint8Array(PREAMBLE_BYTES + headerLen + payloadBytes);
  const view = new DataView(out.buffer);
  out.set(Buffer.from(LOGIT_SHARD_MAGIC, 'latin1'), 0);
  view.setUint32(8, LOGIT_SHARD_VERSION, true);
  view.setUint32(12, headerLen, true);
  out.set(headerRaw, PREAMBLE_BYTES);
  out.fill(0x20, PREAMBLE_BYTES + headerRaw.length, PREAMBLE_BYTES + headerLen);
  const p = PREAMBLE_BYTES + headerLen;

  if (format === 'float32') {
    for (let i = 0; i < logits.length; i++) view.setFloat32(p + 4 * i, logits[i] as number, true);
  } else if (format === 'float16') {
    for (let i = 0; i < logits.length; i++)
      view.setUint16(p + 2 * i, float32ToFloat16Bits(logits[i] as number), true);
  } else {
    const kk = k as number;
    const wide = indexDType(classes) === 'uint16';
    const idxBase = p + n * kk * 2;
    const probs = new Float64Array(classes);
    const topIdx = new Int32Array(kk);
    const topVal = new Float64Array(kk);
    for (let s = 0; s < n; s++) {
      softmaxRow(logits, s, classes, probs);
      // Insertion into a sorted top-k list: O(C) when few classes enter it.
      let filled = 0;
      for (let c = 0; c < classes; c++) {
        const v = probs[c] as number;
        if (filled === kk && v <= (topVal[kk - 1] as number)) continue;
        let j = filled < kk ? filled++ : kk - 1;
        while (j > 0 && (topVal[j - 1] as number) < v) {
          topVal[j] = topVal[j - 1] as number;
          topIdx[j] = topIdx[j - 1] as number;
          j--;
        }
        topVal[j] = v;
        topIdx[j] = c;
      }
      for (let j = 0; j < kk; j++) {
        const at = s * kk + j;
        view.setUint16(p + 2 * at, float32ToFloat16Bits(topVal[j] as number), true);
        if (wide) view.setUint16(idxBase + 2 * at, topIdx[j] as number, true);
        else view.setUint8(idxBase + at, topIdx[j] as number);
      }
    }
  }
  return out;
}

// ---- decode -----------------------------------------------------------------

export interface ExpectedLogitShard {
  format?: LogitFormat;
  classes?: number;
  k?: number;
  start?: number;
  end?: number;
}

/**
 * Reads and validates a shard's preamble and header without touching the payload. `key`
 * names the object in errors; `expect` (e.g. from the manifest) must match field for field.
 */
export function readLogitShardHeader(
  bytes: Uint8Array,
  key: string,
  expect: ExpectedLogitShard = {},
): { header: LogitShardHeader; payloadOffset: number } {
  const fail = (msg: string): never => {
    throw new ArtifactFormatError(key, `not a valid logit shard: ${msg}`);
  };
  if (bytes.length < PREAMBLE_BYTES)
    fail(`${bytes.length} bytes, shorter than the ${PREAMBLE_BYTES}-byte preamble`);
  const magic = Buffer.from(bytes.buffer, bytes.byteOffset, 8).toString('latin1');
  if (magic !== LOGIT_SHARD_MAGIC)
    fail(`magic: expected ${JSON.stringify(LOGIT_SHARD_MAGIC)}, got ${JSON.stringify(magic)}`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== LOGIT_SHARD_VERSION)
    fail(`version: this reader knows layout ${LOGIT_SHARD_VERSION}, the shard has ${version}`);
  const headerLen = view.getUint32(12, true);
  if (headerLen > MAX_HEADER_BYTES || headerLen % 8 !== 0 || PREAMBLE_BYTES + headerLen > bytes.length)
    fail(
      `header length: ${headerLen} is not a multiple of 8 within ${MAX_HEADER_BYTES} and the ${bytes.length}-byte file`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset + PREAMBLE_BYTES, headerLen).toString('utf8'),
    );
  } catch (e) {
    fail(`header is not valid JSON: ${(e as Error).message}`);
  }
  const r = headerSchema.safeParse(raw);
  if (!r.success) return fail(`header: ${formatIssues(r.error)}`);
  const h = r.data as LogitShardHeader;
  if (h.end <= h.start) fail(`header.end: ${h.end} must be greater than header.start ${h.start}`);
  if ((h.format === 'top-k') !== (h.k !== undefined))
    fail(`header.k: required for top-k and only for it, format ${h.format} has k = ${h.k}`);
  if (h.k !== undefined && h.k > h.classes) fail(`header.k: ${h.k} exceeds header.classes ${h.classes}`);
  for (const field of ['format', 'classes', 'k', 'start', 'end'] as const) {
    const want = expect[field];
    if (want !== undefined && h[field] !== want)
      fail(`header.${field}: expected ${JSON.stringify(want)}, got ${JSON.stringify(h[field])}`);
  }
  const d = firstDifference(expectedHeader(h.format, h.classes, h.k, h.start, h.end), h, 'header');
  if (d) fail(d);
  const payloadOffset = PREAMBLE_BYTES + headerLen;
  const want = (h.end - h.start) * bytesPerSample(h.format, h.classes, h.k);
  if (bytes.length - payloadOffset !== want)
    fail(
      `size: ${h.end - h.start} samples of ${h.format} need a ${want}-byte payload, the file has ${bytes.length - payloadOffset}`,
    );
  return { header: h, payloadOffset };
}

export interface DecodedLogitShard {
  format: LogitFormat;
  classes: number;
  k?: number;
  start: number;
  end: number;
  /** 'logits' for float32/float16, 'probabilities' (full C classes, rows sum to 1) for top-k. */
  kind: LogitKind;
  /** Row-major [end - start, classes]. */
  values: Float32Array;
}

/**
 * Decodes a shard to one row of C values per sample: logits (float32, float16) or the
 * reconstructed distribution (top-k): the stored probabilities at their classes, the leftover
 * 1 − Σ spread evenly over the other C − k. When rounding to half made Σ exceed 1 (or k = C),
 * the row is renormalised to sum to 1. Any inconsistency is an ArtifactFormatError naming `key`.
 */
export function decodeLogitShard(
  bytes: Uint8Array,
  key: string,
  expect: ExpectedLogitShard = {},
): DecodedLogitShard {
  const { header: h, payloadOffset: p } = readLogitShardHeader(bytes, key, expect);
  const n = h.end - h.start;
  const C = h.classes;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const values = new Float32Array(n * C);
  if (h.format === 'float32') {
    for (let i = 0; i < values.length; i++) values[i] = view.getFloat32(p + 4 * i, true);
  } else if (h.format === 'float16') {
    const table = halfTable();
    for (let i = 0; i < values.length; i++) values[i] = table[view.getUint16(p + 2 * i, true)] as number;
  } else {
    const k = h.k as number;
    const wide = indexDType(C) === 'uint16';
    const idxBase = p + n * k * 2;
    const table = halfTable();
    const seen = new Int32Array(C).fill(-1);
    const top = new Float64Array(k);
    const idx = new Int32Array(k);
    for (let s = 0; s < n; s++) {
      let sum = 0;
      for (let j = 0; j < k; j++) {
        const at = s * k + j;
        const v = table[view.getUint16(p + 2 * at, true)] as number;
        const c = wide ? view.getUint16(idxBase + 2 * at, true) : view.getUint8(idxBase + at);
        if (!(v >= 0 && v <= 1))
          throw new ArtifactFormatError(
            key,
            `probabilities[${s}][${j}] (sample ${h.start + s}) is ${v}, not a probability`,
          );
        if (c >= C)
          throw new ArtifactFormatError(
            key,
            `indices[${s}][${j}] (sample ${h.start + s}) is ${c}, not < ${C}`,
          );
        if (seen[c] === s)
          throw new ArtifactFormatError(key, `indices[${s}] (sample ${h.start + s}) lists class ${c} twice`);
        seen[c] = s;
        top[j] = v;
        idx[j] = c;
        sum += v;
      }
      const rest = C - k;
      const leftover = Math.max(0, 1 - sum);
      // Normalise only when needed, so the stored top-k values come back exactly.
      const total = rest > 0 ? sum + leftover : sum;
      const scale = total > 0 && (sum > 1 || rest === 0) ? 1 / total : 1;
      const row = s * C;
      if (rest > 0) values.fill((leftover / rest) * scale, row, row + C);
      for (let j = 0; j < k; j++) values[row + (idx[j] as number)] = (top[j] as number) * scale;
      if (total === 0) values.fill(1 / C, row, row + C);
    }
  }
  return {
    format: h.format,
    classes: C,
    ...(h.k !== undefined ? { k: h.k } : {}),
    start: h.start,
    end: h.end,
    kind: h.stores,
    values,
  };
}

// ---- probabilities ----------------------------------------------------------

/**
 * Per-row probabilities at temperature T from either kind of rows: softmax(z / T) for logits,
 * p^(1/T) renormalised for probabilities (the same thing when p = softmax(z); for a top-k
 * reconstruction it tempers the spread leftover too). Returns a new array; T = 1 on
 * probabilities is a copy.
 */
export function toProbabilities(
  rows: { kind: LogitKind; classes: number; values: Float32Array },
  temperature = 1,
): Float32Array {
  const { kind, classes: C, values } = rows;
  if (!(temperature > 0) || !Number.isFinite(temperature))
    throw new StoreUsageError(`temperature must be a positive finite number, got ${temperature}`);
  if (values.length % C !== 0)
    throw new StoreUsageError(`${values.length} values are not a whole number of rows of ${C} classes`);
  const out = new Float32Array(values.length);
  if (kind === 'probabilities' && temperature === 1) {
    out.set(values);
    return out;
  }
  const row = new Float64Array(C);
  for (let base = 0; base < values.length; base += C) {
    let sum = 0;
    if (kind === 'logits') {
      let max = -Infinity;
      for (let c = 0; c < C; c++) max = Math.max(max, values[base + c] as number);
      for (let c = 0; c < C; c++) {
        const e = Math.exp(((values[base + c] as number) - max) / temperature);
        row[c] = e;
        sum += e;
      }
    } else {
      // Work relative to the largest p, so p^(1/T) cannot underflow to an all-zero row.
      let max = 0;
      for (let c = 0; c < C; c++) max = Math.max(max, values[base + c] as number);
      for (let c = 0; c < C; c++) {
        const v = values[base + c] as number;
        const e = v > 0 && max > 0 ? (v / max) ** (1 / temperature) : 0;
        row[c] = e;
        sum += e;
      }
    }
    for (let c = 0; c < C; c++) out[base + c] = (row[c] as number) / sum;
  }
  return out;
}

/** How far a stored format's distributions are from the full-precision ones. */
export interface ReconstructionError {
  rows: number;
  /** Mean over rows of KL(full ‖ stored), in nats. */
  meanKl: number;
  maxKl: number;
}

/**
 * KL(p ‖ q) per row, p the full distribution and q the one a stored format gives back (both
 * probability rows of `classes`), in float64. A q entry of exactly 0 where p has mass (a top-k
 * set whose kept probabilities already sum to 1 in fp16) is floored at `floor`, so one such
 * row costs p·ln(p/floor) instead of making the mean infinite; pass 0 to see the infinity.
 */
export function reconstructionError(
  full: Float32Array,
  stored: Float32Array,
  classes: number,
  floor = 1e-12,
): ReconstructionError {
  if (full.length !== stored.length)
    throw new StoreUsageError(`full has ${full.length} values, stored ${stored.length}: not the same rows`);
  if (!Number.isInteger(classes) || classes < 1 || full.length % classes !== 0)
    throw new StoreUsageError(`${full.length} values are not a whole number of rows of ${classes} classes`);
  const rows = full.length / classes;
  let sum = 0;
  let max = 0;
  for (let base = 0; base < full.length; base += classes) {
    let kl = 0;
    for (let c = 0; c < classes; c++) {
      const p = full[base + c] as number;
      if (p <= 0) continue;
      const q = Math.max(stored[base + c] as number, floor);
      kl += p * Math.log(p / q);
    }
    // Rounding can push a row's sum a hair below zero when p and q agree to float precision.
    kl = Math.max(kl, 0);
    sum += kl;
    if (kl > max) max = kl;
  }
  return { rows, meanKl: rows === 0 ? 0 : sum / rows, maxKl: max };
}
