/**
 * Exact selection of the k weights to prune from a group of layers, in O(n) without sorting.
 *
 * Magnitude order is total: (|w|, layer position in the group, flat row-major index) ascending, and the first k
 * survivors in that order are pruned. So among equal |w| (including +0 and -0) the weight in the earlier layer,
 * then at the lower index, goes first. The group's layer order is the caller's (prune.ts uses code-unit name
 * order), which makes the result independent of object key order, sort stability and machine.
 *
 * For a finite float32, the IEEE bits with the sign cleared, read as an unsigned integer, order exactly like |w|.
 * A two-pass radix select on those 31-bit keys (top 15 bits, then the low 16 within the one bucket that holds
 * the k-th key) finds the threshold key T and how many survivors lie strictly below it; a last pass prunes every
 * survivor below T plus the first (k - below) survivors equal to T. Three linear passes and two small histograms:
 * no comparator closures, no n-sized scratch, and nothing approximate.
 */
import { Rng } from '../rng.js';

export interface Layer {
  name: string;
  /** float32 bits of the weights (a view, not a copy). */
  bits: Uint32Array;
  /** The new mask, written in place; starts as a copy of the previous one. 1 = alive. */
  keep: Uint8Array;
  /** Number of ones in `keep`. */
  alive: number;
}

const ABS = 0x7fffffff;

export function pruneSmallest(layers: readonly Layer[], k: number): void {
  if (k <= 0) return;
  const hi = new Uint32Array(1 << 15);
  for (const { bits, keep } of layers) {
    for (let i = 0; i < bits.length; i++) {
      if (keep[i] !== 1) continue;
      const h = ((bits[i] as number) & ABS) >>> 16;
      hi[h] = (hi[h] as number) + 1;
    }
  }
  let below = 0;
  let b = 0;
  while (below + (hi[b] as number) < k) below += hi[b++] as number;

  const lo = new Uint32Array(1 << 16);
  for (const { bits, keep } of layers) {
    for (let i = 0; i < bits.length; i++) {
      if (keep[i] !== 1) continue;
      const a = (bits[i] as number) & ABS;
      if (a >>> 16 === b) lo[a & 0xffff] = (lo[a & 0xffff] as number) + 1;
    }
  }
  let l = 0;
  while (below + (lo[l] as number) < k) below += lo[l++] as number;
  const threshold = (b << 16) | l;

  let ties = k - below;
  for (const layer of layers) {
    const { bits, keep } = layer;
    let pruned = 0;
    for (let i = 0; i < bits.length; i++) {
      if (keep[i] !== 1) continue;
      const a = (bits[i] as number) & ABS;
      if (a < threshold || (a === threshold && ties > 0)) {
        if (a === threshold) ties--;
        keep[i] = 0;
        pruned++;
      }
    }
    layer.alive -= pruned;
  }
}

/**
 * Prunes k survivors of the group chosen uniformly at random: a partial Fisher–Yates shuffle over the survivors
 * listed in group order, so the draw sequence, and hence the mask, is a function of the seed and the masks alone.
 */
export function pruneRandom(layers: readonly Layer[], k: number, rng: Rng): void {
  if (k <= 0) return;
  const n = layers.reduce((s, l) => s + l.alive, 0);
  const layerOf = new Int32Array(n);
  const indexOf = new Int32Array(n);
  let j = 0;
  layers.forEach(({ keep }, li) => {
    for (let i = 0; i < keep.length; i++) {
      if (keep[i] !== 1) continue;
      layerOf[j] = li;
      indexOf[j++] = i;
    }
  });
  for (let i = 0; i < k; i++) {
    const r = i + rng.int(n - i);
    const tl = layerOf[i] as number;
    const ti = indexOf[i] as number;
    layerOf[i] = layerOf[r] as number;
    indexOf[i] = indexOf[r] as number;
    layerOf[r] = tl;
    indexOf[r] = ti;
    const layer = layers[layerOf[i] as number] as Layer;
    layer.keep[indexOf[i] as number] = 0;
    layer.alive--;
  }
}

/** Exactly `count` of `n` positions set to 1, uniformly at random (the smaller side is drawn, the rest filled). */
export function randomKeep(n: number, count: number, rng: Rng): Uint8Array {
  const drawOnes = count <= n - count;
  const m = drawOnes ? count : n - count;
  const keep = new Uint8Array(n).fill(drawOnes ? 0 : 1);
  const pos = new Int32Array(n);
  for (let i = 0; i < n; i++) pos[i] = i;
  for (let i = 0; i < m; i++) {
    const r = i + rng.int(n - i);
    const t = pos[r] as number;
    pos[r] = pos[i] as number;
    pos[i] = t;
    keep[t] = drawOnes ? 1 : 0;
  }
  return keep;
}
