/**
 * Per-channel mean and standard deviation of pixel/255 over a split (the training split's normalise both splits),
 * summed in double precision so that the figures do not depend on the order of images beyond rounding.
 */
import type { ImageSplit } from './types.js';

export function channelStatistics(split: Pick<ImageSplit, 'pixels' | 'shape'>): {
  mean: number[];
  std: number[];
} {
  const c = split.shape[3];
  const sum = new Float64Array(c);
  const squares = new Float64Array(c);
  // Counts of each byte value per channel: exact sums whatever the size.
  const counts = Array.from({ length: c }, () => new Float64Array(256));
  const px = split.pixels;
  for (let i = 0; i < px.length; i++) {
    const h = counts[i % c] as Float64Array;
    const v = px[i] as number;
    h[v] = (h[v] as number) + 1;
  }
  const perChannel = px.length / c;
  for (let ch = 0; ch < c; ch++) {
    const h = counts[ch] as Float64Array;
    for (let v = 0; v < 256; v++) {
      sum[ch] = (sum[ch] as number) + (h[v] as number) * (v / 255);
      squares[ch] = (squares[ch] as number) + (h[v] as number) * (v / 255) ** 2;
    }
  }
  const mean = Array.from(sum, (s) => s / perChannel);
  const std = Array.from(squares, (q, ch) =>
    Math.sqrt(Math.max(0, q / perChannel - (mean[ch] as number) ** 2)),
  );
  return { mean, std };
}
