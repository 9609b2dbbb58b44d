// Types for wawoff2 (Google's WOFF2 codec compiled to WebAssembly), which ships none.
declare module 'wawoff2' {
  /** A WOFF2 font file to the TrueType/OpenType (sfnt) bytes it packs. */
  export function decompress(woff2: Uint8Array): Promise<Uint8Array>;
  /** sfnt bytes to WOFF2. */
  export function compress(sfnt: Uint8Array): Promise<Uint8Array>;
}
