/**
 * Parser for the IDX format used by the original MNIST files (http://yann.lecun.com/exdb/mnist/): big-endian
 * magic 0x00 0x00 <type> <ndims>, then ndims uint32 sizes, then the data. We read only unsigned bytes (type 0x08).
 */
export interface IdxArray {
  shape: number[];
  data: Uint8Array;
}

const IDX_UBYTE = 0x08;

export function parseIdx(buf: Uint8Array, what: string, expectedDims: number): IdxArray {
  if (buf.byteLength < 4)
    throw new Error(`${what}: file too short for an IDX header (${buf.byteLength} bytes)`);
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const magic = view.getUint32(0, false);
  const expectedMagic = (IDX_UBYTE << 8) | expectedDims;
  if (magic !== expectedMagic) {
    throw new Error(
      `${what}: bad IDX magic 0x${magic.toString(16).padStart(8, '0')}, expected ` +
        `0x${expectedMagic.toString(16).padStart(8, '0')} (unsigned bytes, ${expectedDims} dims)`,
    );
  }
  const headerBytes = 4 + 4 * expectedDims;
  if (buf.byteLength < headerBytes) throw new Error(`${what}: truncated IDX header`);
  const shape: number[] = [];
  for (let i = 0; i < expectedDims; i++) shape.push(view.getUint32(4 + 4 * i, false));
  const n = shape.reduce((a, b) => a * b, 1);
  if (buf.byteLength !== headerBytes + n) {
    throw new Error(
      `${what}: IDX header says shape [${shape.join(', ')}] (${n} bytes of data) but the file has ` +
        `${buf.byteLength - headerBytes} bytes after the header`,
    );
  }
  return { shape, data: buf.subarray(headerBytes) };
}
