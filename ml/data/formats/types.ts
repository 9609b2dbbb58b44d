/**
 * One split of an image-classification dataset as it sits on disk: uint8 pixels in NHWC order and an integer label
 * per image. Everything a format parser returns; normalisation happens later, from the training split's statistics.
 */
export interface ImageSplit {
  /** n·h·w·c bytes, row-major [n, h, w, c]. */
  pixels: Uint8Array;
  labels: Int32Array;
  shape: readonly [n: number, h: number, w: number, c: number];
  /** Labels are in 0..classes-1. */
  classes: number;
}

/** A dataset's two splits, with the class names where the format carries them. */
export interface ImageSplits {
  train: ImageSplit;
  test: ImageSplit;
  classNames?: string[];
}

/** Refused input: names the file and what is wrong with it. Never retryable: the bytes will not change. */
export class DatasetFormatError extends Error {
  readonly nonRetryable = true;
  constructor(
    readonly file: string,
    problem: string,
  ) {
    super(`${file}: ${problem}`);
    this.name = 'DatasetFormatError';
  }
}

/** Checks that every label is an integer in 0..classes-1, naming the first that is not. */
export function checkLabels(labels: ArrayLike<number>, classes: number, file: string): void {
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    if (!Number.isInteger(l) || l < 0 || l >= classes)
      throw new DatasetFormatError(file, `label ${l} of image ${i} is out of range 0..${classes - 1}`);
  }
}
