/**
 * The safetensors file format (https://github.com/huggingface/safetensors), so that any
 * checkpoint or mask in the store opens in PyTorch or NumPy:
 *
 *   u64 little-endian N | N bytes of JSON header, space-padded | raw little-endian data
 *
 * Header: {"__metadata__": {str: str}, name: {dtype, shape, data_offsets: [begin, end]}},
 * offsets relative to the start of the data section.
 */
import { endianness } from 'node:os';
import { z } from 'zod';

// The tensors ml/ produces, by the same names: the store imports only these types from ml/, which has no imports.
import type { HostDType, HostTensor, NamedTensors } from '../ml/host-tensor.js';

export type { HostDType, HostTensor, NamedTensors };

export interface DecodedSafetensors {
  tensors: NamedTensors;
  metadata: Record<string, string>;
}

/** Bad input to the encoder or a malformed file; retrying cannot fix either. */
export class SafetensorsError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'SafetensorsError';
}

interface DTypeInfo {
  st: string;
  bytes: number;
  ctor: Float32ArrayConstructor | Float64ArrayConstructor | Int32ArrayConstructor | Uint8ArrayConstructor;
}

const DTYPES: Record<HostDType, DTypeInfo> = {
  float32: { st: 'F32', bytes: 4, ctor: Float32Array },
  float64: { st: 'F64', bytes: 8, ctor: Float64Array },
  int32: { st: 'I32', bytes: 4, ctor: Int32Array },
  uint8: { st: 'U8', bytes: 1, ctor: Uint8Array },
};

const FROM_ST: Record<string, HostDType> = { F32: 'float32', F64: 'float64', I32: 'int32', U8: 'uint8' };

// Dtypes the format defines but this project does not compute in: named so the
// refusal says "unsupported" rather than "invalid".
const KNOWN_UNSUPPORTED = new Set([
  'BOOL',
  'I8',
  'I16',
  'U16',
  'F16',
  'BF16',
  'U32',
  'I64',
  'U64',
  'F8_E4M3',
  'F8_E5M2',
]);

// Same cap as the reference implementation: a larger header is a corrupt length field,
// and believing it would allocate gigabytes.
const MAX_HEADER_BYTES = 100_000_000;

const METADATA_KEY = '__metadata__';

// The data sections are copied byte for byte into typed arrays, which use the
// platform's byte order; every platform Node ships for is little-endian.
function assertLittleEndian(): void {
  if (endianness() !== 'LE')
    throw new SafetensorsError('safetensors I/O is implemented for little-endian hosts only');
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

function checkShape(name: string, shape: unknown): asserts shape is number[] {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new SafetensorsError(
      `tensor '${name}': shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`,
    );
  }
}

/** Serialises a tensor set; tensors are laid out in sorted-name order, metadata keys sorted. */
export function encodeSafetensors(tensors: NamedTensors, metadata: Record<string, string> = {}): Uint8Array {
  assertLittleEndian();
  const names = Object.keys(tensors).sort();
  const entries: string[] = [];
  const metaKeys = Object.keys(metadata).sort();
  if (metaKeys.length > 0) {
    const parts = metaKeys.map((k) => {
      const v = metadata[k];
      if (typeof v !== 'string')
        throw new SafetensorsError(`metadata '${k}': value must be a string, got ${typeof v}`);
      return `${JSON.stringify(k)}:${JSON.stringify(v)}`;
    });
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${parts.join(',')}}`);
  }

  let offset = 0;
  const chunks: Uint8Array[] = [];
  for (const name of names) {
    if (name === '' || name === METADATA_KEY)
      throw new SafetensorsError(`invalid tensor name ${JSON.stringify(name)}`);
    const t = tensors[name] as HostTensor;
    const info = DTYPES[t.dtype] as DTypeInfo | undefined;
    if (!info) throw new SafetensorsError(`tensor '${name}': unsupported dtype ${JSON.stringify(t.dtype)}`);
    checkShape(name, t.shape);
    if (!(t.data instanceof info.ctor)) {
      throw new SafetensorsError(
        `tensor '${name}': dtype ${t.dtype} needs a ${info.ctor.name}, got ${t.data?.constructor?.name ?? typeof t.data}`,
      );
    }
    const n = numel(t.shape);
    if (t.data.length !== n) {
      throw new SafetensorsError(
        `tensor '${name}': shape [${t.shape.join(', ')}] holds ${n} elements but data has ${t.data.length}`,
      );
    }
    const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    // Key order dtype, shape, data_offsets matches the reference writer.
    entries.push(
      `${JSON.stringify(name)}:{"dtype":"${info.st}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${offset + bytes.length}]}`,
    );
    chunks.push(bytes);
    offset += bytes.length;
  }

  // The JSON is built by hand: a JS object would move integer-like tensor names to the front.
  const headerText = `{${entries.join(',')}}`;
  const headerRaw = Buffer.from(headerText, 'utf8');
  // Padding to a multiple of 8 keeps the data section 8-byte aligned for mmap readers.
  const headerLen = Math.ceil(headerRaw.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(headerRaw, 8);
  out.fill(0x20, 8 + headerRaw.length, 8 + headerLen);
  let pos = 8 + headerLen;
  for (const c of chunks) {
    out.set(c, pos);
    pos += c.length;
  }
  return out;
}

const tensorHeaderSchema = z.object({
  dtype: z.string(),
  shape: z.array(z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER)),
  data_offsets: z.tuple([
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
    z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  ]),
});

// Checked entry by entry rather than with z.record, which silently drops a "__proto__"
// key and would make a round trip lossy.
const metadataSchema = z.custom<object>(
  (v) => typeof v === 'object' && v !== null && !Array.isArray(v),
  'must be a JSON object',
);
const metadataValueSchema = z.string();

function describeIssues(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(root)'}: ${i.message}`).join('; ');
}

/**
 * Parses a safetensors file. Every tensor is copied into a fresh typed array, because the
 * data section of a file is not generally aligned for Float32Array/Int32Array views and
 * because callers must not keep the (possibly large) download alive through a view.
 */
export function decodeSafetensors(file: Uint8Array): DecodedSafetensors {
  assertLittleEndian();
  if (file.length < 8)
    throw new SafetensorsError(`file is ${file.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(file.buffer, file.byteOffset, file.byteLength);
  const headerLenBig = view.getBigUint64(0, true);
  if (headerLenBig > BigInt(Math.min(MAX_HEADER_BYTES, file.length - 8))) {
    throw new SafetensorsError(
      `header length ${headerLenBig} exceeds the file (${file.length} bytes) or the ${MAX_HEADER_BYTES}-byte limit`,
    );
  }
  const headerLen = Number(headerLenBig);
  let headerText: string;
  try {
    headerText = new TextDecoder('utf-8', { fatal: true }).decode(file.subarray(8, 8 + headerLen));
  } catch {
    throw new SafetensorsError('header is not valid UTF-8');
  }
  if (!headerText.startsWith('{')) throw new SafetensorsError("header does not start with '{'");
  let header: unknown;
  try {
    header = JSON.parse(headerText);
  } catch (e) {
    throw new SafetensorsError(`header is not valid JSON: ${(e as Error).message}`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new SafetensorsError('header must be a JSON object');
  }

  const data = file.subarray(8 + headerLen);
  let metadata: Record<string, string> = {};
  const parsed: { name: string; dtype: HostDType; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === METADATA_KEY) {
      const m = metadataSchema.safeParse(raw);
      if (!m.success)
        throw new SafetensorsError(`__metadata__ must map strings to strings: ${describeIssues(m.error)}`);
      const pairs = Object.entries(m.data).map(([k, v]): [string, string] => {
        const r = metadataValueSchema.safeParse(v);
        if (!r.success)
          throw new SafetensorsError(`__metadata__.${k} must be a string: ${describeIssues(r.error)}`);
        return [k, r.data];
      });
      metadata = Object.fromEntries(pairs);
      continue;
    }
    const r = tensorHeaderSchema.safeParse(raw);
    if (!r.success) throw new SafetensorsError(`tensor '${name}': ${describeIssues(r.error)}`);
    const dtype = FROM_ST[r.data.dtype];
    if (!dtype) {
      const why = KNOWN_UNSUPPORTED.has(r.data.dtype) ? 'unsupported' : 'unknown';
      throw new SafetensorsError(`tensor '${name}': ${why} dtype ${r.data.dtype} (supported: F32, I32, U8)`);
    }
    const [begin, end] = r.data.data_offsets;
    if (end < begin)
      throw new SafetensorsError(`tensor '${name}': data_offsets [${begin}, ${end}] end before they begin`);
    const expected = numel(r.data.shape) * DTYPES[dtype].bytes;
    if (!Number.isSafeInteger(expected) || end - begin !== expected) {
      throw new SafetensorsError(
        `tensor '${name}': ${r.data.dtype} of shape [${r.data.shape.join(', ')}] needs ${expected} bytes but data_offsets [${begin}, ${end}] span ${end - begin}`,
      );
    }
    parsed.push({ name, dtype, shape: r.data.shape, begin, end });
  }

  // The reference reader rejects holes, overlaps and trailing bytes; so do we, since any
  // of them means the file is not what its writer meant.
  const byOffset = [...parsed].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let cursor = 0;
  for (const t of byOffset) {
    if (t.begin !== cursor) {
      throw new SafetensorsError(
        `tensor '${t.name}': data_offsets begin at ${t.begin}, expected ${cursor} (tensors must be contiguous and not overlap)`,
      );
    }
    cursor = t.end;
  }
  if (cursor !== data.length) {
    throw new SafetensorsError(
      `tensors cover ${cursor} bytes of data but the data section has ${data.length}`,
    );
  }

  const tensors: NamedTensors = Object.fromEntries(
    parsed.map((t) => {
      const info = DTYPES[t.dtype];
      const arr = new info.ctor((t.end - t.begin) / info.bytes);
      new Uint8Array(arr.buffer).set(data.subarray(t.begin, t.end));
      return [t.name, { dtype: t.dtype, shape: t.shape, data: arr }];
    }),
  );
  return { tensors, metadata };
}
