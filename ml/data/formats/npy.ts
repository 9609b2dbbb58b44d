/**
 * NumPy's .npy format (versions 1.0-3.0): the magic "\x93NUMPY", a version, a little-endian header length, a Python
 * dict literal {'descr': ..., 'fortran_order': ..., 'shape': (...)} padded with spaces, then the raw C-order data.
 * Only what datasets need: unsigned bytes for images and integer types for labels, C order.
 */
import { DatasetFormatError } from './types.js';

export interface NpyArray {
  /** The dtype as NumPy writes it: '|u1', '<i8', ... */
  descr: string;
  shape: number[];
  data:
    | Uint8Array
    | Int8Array
    | Int16Array
    | Uint16Array
    | Int32Array
    | Uint32Array
    | BigInt64Array
    | BigUint64Array;
}

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59];

/** Typed arrays per little-endian (or byte-order-free) dtype; a big-endian '>' dtype is refused by name. */
const DTYPES: Record<
  string,
  { bytes: number; make: (b: ArrayBuffer, off: number, n: number) => NpyArray['data'] }
> = {
  '|u1': { bytes: 1, make: (b, o, n) => new Uint8Array(b, o, n) },
  '|i1': { bytes: 1, make: (b, o, n) => new Int8Array(b, o, n) },
  '<i2': { bytes: 2, make: (b, o, n) => new Int16Array(b, o, n) },
  '<u2': { bytes: 2, make: (b, o, n) => new Uint16Array(b, o, n) },
  '<i4': { bytes: 4, make: (b, o, n) => new Int32Array(b, o, n) },
  '<u4': { bytes: 4, make: (b, o, n) => new Uint32Array(b, o, n) },
  '<i8': { bytes: 8, make: (b, o, n) => new BigInt64Array(b, o, n) },
  '<u8': { bytes: 8, make: (b, o, n) => new BigUint64Array(b, o, n) },
};

function headerField(header: string, key: string, file: string): string {
  const m = new RegExp(`['"]${key}['"]\\s*:\\s*`).exec(header);
  if (!m) throw new DatasetFormatError(file, `the .npy header has no '${key}'`);
  return header.slice(m.index + m[0].length);
}

/** `accept`: the dtypes the caller can use, and how to say so when the array has another. */
export function parseNpy(
  bytes: Uint8Array,
  file: string,
  accept?: { dtypes: readonly string[]; expected: string },
): NpyArray {
  if (bytes.length < 10 || MAGIC.some((b, i) => bytes[i] !== b))
    throw new DatasetFormatError(file, 'not a .npy array (no \\x93NUMPY magic)');
  const major = bytes[6] as number;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const [lengthBytes, headerLength] =
    major === 1 ? [2, view.getUint16(8, true)] : major <= 3 ? [4, view.getUint32(8, true)] : [0, -1];
  if (headerLength < 0)
    throw new DatasetFormatError(file, `.npy version ${major} is not supported (1-3 are)`);
  const start = 8 + lengthBytes + headerLength;
  if (start > bytes.length)
    throw new DatasetFormatError(file, 'the .npy header runs past the end of the file');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(
    bytes.subarray(8 + lengthBytes, start),
  );
  const descr = /^['"]([^'"]+)['"]/.exec(headerField(header, 'descr', file))?.[1];
  if (!descr) throw new DatasetFormatError(file, "the .npy header's 'descr' is not a string");
  if (/^True/.test(headerField(header, 'fortran_order', file)))
    throw new DatasetFormatError(
      file,
      'the array is in Fortran order; save it in C order (np.ascontiguousarray)',
    );
  const shapeText = /^\(([^)]*)\)/.exec(headerField(header, 'shape', file))?.[1];
  if (shapeText === undefined) throw new DatasetFormatError(file, "the .npy header's 'shape' is not a tuple");
  const shape = shapeText
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0)
    .map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0))
    throw new DatasetFormatError(file, `the .npy shape (${shapeText}) is not a tuple of sizes`);
  if (accept && !accept.dtypes.includes(descr))
    throw new DatasetFormatError(file, `the array is ${descr}, expected ${accept.expected}`);
  const type = DTYPES[descr];
  if (!type)
    throw new DatasetFormatError(file, `dtype ${descr} is not supported (${Object.keys(DTYPES).join(', ')})`);
  const count = shape.reduce((a, b) => a * b, 1);
  if (bytes.length - start !== count * type.bytes)
    throw new DatasetFormatError(
      file,
      `shape (${shape.join(', ')}) of ${descr} needs ${count * type.bytes} bytes of data, the file has ${bytes.length - start}`,
    );
  // A copy: the data are then aligned for their type and independent of the archive's buffer.
  const own = bytes.slice(start);
  return { descr, shape, data: type.make(own.buffer, 0, count) };
}
