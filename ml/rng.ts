/**
 * Seeded pseudo-random numbers whose whole state is four uint32s, so a checkpoint can store it as JSON and a
 * restored generator continues with exactly the draws the original would have made.
 *
 * Generator: xoshiro128** 1.1 (Blackman & Vigna, https://prng.di.unimi.it/xoshiro128starstar.c): 128-bit state,
 * period 2^128-1, passes BigCrush; only 32-bit integer ops, so it is exact and identical on every JS engine.
 * Seeding: splitmix32 (the 32-bit variant of Steele et al.'s SplitMix) expands a seed into the four words, as the
 * xoshiro authors recommend, so that nearby seeds give unrelated streams.
 * We write it by hand because `pure-rand` is not a dependency here and the generator is a dozen lines.
 *
 * Floating-point draws use only IEEE-exact arithmetic plus Math.log/sqrt/cos, which V8 implements in software
 * (fdlibm port), so the same seed yields the same normals on every platform.
 */
import { z } from 'zod';

export const RNG_ALGORITHM = 'xoshiro128**';

export interface RngState {
  algorithm: typeof RNG_ALGORITHM;
  s: [number, number, number, number];
}

const uint32 = z.number().int().min(0).max(0xffffffff);
const rngStateSchema = z.object({
  algorithm: z.literal(RNG_ALGORITHM),
  s: z.tuple([uint32, uint32, uint32, uint32]).refine((s) => s.some((w) => w !== 0), {
    message: 'xoshiro state must not be all zero',
  }),
});

function splitmix32(state: { x: number }): number {
  state.x = (state.x + 0x9e3779b9) | 0;
  let t = state.x ^ (state.x >>> 16);
  t = Math.imul(t, 0x21f0aaad);
  t ^= t >>> 15;
  t = Math.imul(t, 0x735a2d97);
  t ^= t >>> 15;
  return t >>> 0;
}

function checkSeed(seed: number): void {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new Error(`rng seed must be a non-negative safe integer, got ${seed}`);
  }
}

/** Folds a seed (up to 2^53) into 32 bits without discarding the high word. */
function seedWord(seed: number): number {
  checkSeed(seed);
  const lo = seed >>> 0;
  const hi = Math.floor(seed / 0x100000000) >>> 0;
  const st = { x: hi };
  return (lo ^ splitmix32(st)) >>> 0;
}

function hashString(s: string): number {
  // FNV-1a over UTF-16 code units; only used to turn labels into seed material.
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h >>> 0;
}

/**
 * Derives an independent uint32 seed from a base seed and labels, e.g. `deriveSeed(seed, 'init', 'fc1.weight')`
 * or `deriveSeed(seed, 'epoch', 3)`. Streams keyed this way do not depend on the order in which they are used,
 * which is what makes initialisation and data order pure functions of their inputs.
 */
export function deriveSeed(seed: number, ...parts: (number | string)[]): number {
  const st = { x: seedWord(seed) };
  let h = splitmix32(st);
  for (const p of parts) {
    const w = typeof p === 'string' ? hashString(p) : seedWord(p);
    st.x = (h ^ w) | 0;
    h = splitmix32(st);
    // A second round so that single-bit differences in w spread over all of h.
    h = splitmix32(st);
  }
  return h >>> 0;
}

const TWO_POW_32 = 0x100000000;
const TWO_POW_53 = 9007199254740992;

export class Rng {
  private s0: number;
  private s1: number;
  private s2: number;
  private s3: number;

  constructor(seedOrState: number | RngState) {
    if (typeof seedOrState === 'number') {
      const st = { x: seedWord(seedOrState) };
      this.s0 = splitmix32(st);
      this.s1 = splitmix32(st);
      this.s2 = splitmix32(st);
      this.s3 = splitmix32(st);
      if ((this.s0 | this.s1 | this.s2 | this.s3) === 0) this.s0 = 1;
    } else {
      const s = Rng.parseState(seedOrState).s;
      [this.s0, this.s1, this.s2, this.s3] = s;
    }
  }

  /** Validates an untrusted (deserialised) state; errors say which field is wrong. */
  static parseState(value: unknown): RngState {
    const r = rngStateSchema.safeParse(value);
    if (!r.success) {
      const issue = r.error.issues[0];
      const where = issue && issue.path.length > 0 ? `rng.${issue.path.join('.')}` : 'rng';
      throw new Error(`invalid rng state: ${where}: ${issue?.message ?? 'invalid'}`);
    }
    return { algorithm: RNG_ALGORITHM, s: [...r.data.s] as [number, number, number, number] };
  }

  static fromState(value: unknown): Rng {
    return new Rng(Rng.parseState(value));
  }

  getState(): RngState {
    return { algorithm: RNG_ALGORITHM, s: [this.s0 >>> 0, this.s1 >>> 0, this.s2 >>> 0, this.s3 >>> 0] };
  }

  clone(): Rng {
    return new Rng(this.getState());
  }

  /** Next raw 32-bit output, uniform on [0, 2^32). */
  nextUint32(): number {
    const s1 = this.s1;
    const result = Math.imul(rotl(Math.imul(s1, 5), 7), 9) >>> 0;
    const t = s1 << 9;
    this.s2 ^= this.s0;
    this.s3 ^= this.s1;
    this.s1 ^= this.s2;
    this.s0 ^= this.s3;
    this.s2 ^= t;
    this.s3 = rotl(this.s3, 11);
    return result;
  }

  /** Uniform double on [0, 1) with 53 random bits (two draws). */
  float(): number {
    const a = this.nextUint32() >>> 5; // 27 bits
    const b = this.nextUint32() >>> 6; // 26 bits
    return (a * 67108864 + b) / TWO_POW_53;
  }

  /** Uniform integer on [0, n), unbiased (rejection sampling), for 1 <= n <= 2^32. */
  int(n: number): number {
    if (!Number.isInteger(n) || n < 1 || n > TWO_POW_32) {
      throw new Error(`rng.int: n must be an integer in [1, 2^32], got ${n}`);
    }
    // Largest multiple of n that fits in 32 bits; draws at or above it would favour small residues.
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextUint32();
      if (x < limit) return x % n;
    }
  }

  /**
   * Standard normal by Box–Muller, using the cosine branch only: one normal costs two uniforms, and the state
   * stays four words (no cached spare to serialise).
   */
  normal(): number {
    const u1 = 1 - this.float(); // (0, 1], so log is finite
    const u2 = this.float();
    return Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2);
  }

  /** In-place Fisher–Yates (Durstenfeld) shuffle. */
  shuffle<T extends { length: number; [i: number]: unknown }>(a: T): T {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const tmp = a[i];
      a[i] = a[j];
      a[j] = tmp;
    }
    return a;
  }

  /** A uniformly random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    if (!Number.isInteger(n) || n < 0 || n > 0x7fffffff) throw new Error(`rng.permutation: bad n ${n}`);
    const p = new Int32Array(n);
    for (let i = 0; i < n; i++) p[i] = i;
    return this.shuffle(p);
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}

/**
 * mulberry32 (Tommy Ettinger's 32-bit generator): a stream of uniform doubles on [0, 1) from a uint32 seed, with
 * no state to store. It is weaker than `Rng` (period 2^32, 32 random bits a draw), but it is small, exact on every
 * engine and pure arithmetic, so the workflow sandbox can run it: a random sweep's draws and test fixtures use it.
 * Its outputs are pinned (sweep trials' values are derived from them): never change it.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
