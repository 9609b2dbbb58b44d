/**
 * Seeded data augmentation whose view of a sample is a pure function of (policy, seed, epoch, sample index), never
 * of the batch it lands in. That is what lets a teacher's stored logits be reused by a student: the student can
 * recompute exactly the view the teacher saw (Beyer et al. 2022; TinyViT keys its stored logits the same way).
 *
 * Policies:
 * - `none`: the image as it is;
 * - `random-shift`: translate by (dy, dx), each uniform in [-maxShift, maxShift] (default 2 pixels), filling
 *   with the background (a raw pixel value of 0, normalised like the rest of the image).
 * - `crop-flip`: the CIFAR recipe, torchvision's RandomCrop(size, padding=maxShift) then RandomHorizontalFlip():
 *   pad by maxShift (default 4) with the background, crop at a uniform offset (a shift as above), then mirror left
 *   to right with probability 1/2.
 */
import { MlInputError } from '../errors.js';
import { deriveSeed, Rng } from '../rng.js';
import { imageSize, type Dataset } from './index.js';

import { AUGMENTATION_POLICIES, type AugmentationPolicy } from './names.js';

export { AUGMENTATION_POLICIES, type AugmentationPolicy };

export interface AugmentationSpec {
  policy: AugmentationPolicy;
  seed: number;
  /** random-shift: the largest shift in pixels along each axis (default 2); crop-flip: the padding (default 4). */
  maxShift?: number;
}

/** Checks a spec; `side`, where an image is at hand, bounds the shift. */
function checkSpec(spec: AugmentationSpec, side?: number): number {
  if (!(AUGMENTATION_POLICIES as readonly string[]).includes(spec.policy)) {
    throw new MlInputError(
      `augmentation.policy must be one of ${AUGMENTATION_POLICIES.join(', ')}, got ${JSON.stringify(spec.policy)}`,
    );
  }
  if (!Number.isSafeInteger(spec.seed) || spec.seed < 0) {
    throw new MlInputError(`augmentation.seed must be a non-negative integer, got ${spec.seed}`);
  }
  const maxShift = spec.maxShift ?? (spec.policy === 'crop-flip' ? 4 : 2);
  if (!Number.isInteger(maxShift) || maxShift < 0 || (side !== undefined && maxShift >= side)) {
    throw new MlInputError(
      `augmentation.maxShift must be an integer in 0..${side === undefined ? '' : side - 1}, got ${maxShift}`,
    );
  }
  return maxShift;
}

/** The view of sample `index` in `epoch`: its shift (dy, dx) and whether it is mirrored left to right. */
export function viewFor(
  spec: AugmentationSpec,
  epoch: number,
  index: number,
): { dy: number; dx: number; flip: boolean } {
  const maxShift = checkSpec(spec);
  if (spec.policy === 'none') return { dy: 0, dx: 0, flip: false };
  const rng = new Rng(deriveSeed(spec.seed, 'augment', spec.policy, epoch, index));
  const span = 2 * maxShift + 1;
  const [dy, dx] = maxShift === 0 ? [0, 0] : [rng.int(span) - maxShift, rng.int(span) - maxShift];
  return { dy, dx, flip: spec.policy === 'crop-flip' && rng.int(2) === 1 };
}

/** The shift applied to sample `index` in `epoch`: (dy, dx). */
export function shiftFor(spec: AugmentationSpec, epoch: number, index: number): [number, number] {
  const v = viewFor(spec, epoch, index);
  return [v.dy, v.dx];
}

/**
 * The augmented images of `indices` (rows of `data`) in `epoch`, as one [indices.length × h·w·c] array. Pure: the
 * same arguments give the same bits, whatever else is in the batch.
 */
export function augmentImages(
  data: Dataset,
  indices: ArrayLike<number>,
  spec: AugmentationSpec,
  epoch: number,
): Float32Array {
  const [h, w, c] = [data.height, data.width, data.channels];
  checkSpec(spec, Math.min(h, w));
  const size = imageSize(data);
  const out = new Float32Array(indices.length * size);
  const { mean, std } = data.normalisation;
  const background = mean.map((m, ch) => Math.fround((0 - m) / (std[ch] as number)));
  for (let j = 0; j < indices.length; j++) {
    const i = indices[j] as number;
    if (!Number.isInteger(i) || i < 0 || i >= data.n) {
      throw new MlInputError(`sample index ${i} is outside 0..${data.n - 1}`);
    }
    const src = data.images.subarray(i * size, (i + 1) * size);
    const dst = out.subarray(j * size, (j + 1) * size);
    const { dy, dx, flip } = viewFor(spec, epoch, i);
    if (dy === 0 && dx === 0 && !flip) {
      dst.set(src);
      continue;
    }
    for (let y = 0; y < h; y++) {
      const sy = y - dy;
      for (let x = 0; x < w; x++) {
        // The flip mirrors the cropped image: output column x shows the crop's column w − 1 − x.
        const sx = (flip ? w - 1 - x : x) - dx;
        const inside = sy >= 0 && sy < h && sx >= 0 && sx < w;
        for (let ch = 0; ch < c; ch++)
          dst[(y * w + x) * c + ch] = inside
            ? (src[(sy * w + sx) * c + ch] as number)
            : (background[ch] as number);
      }
    }
  }
  return out;
}
