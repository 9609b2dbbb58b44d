/**
 * Error bars for the curvature and flatness measures: a measure run on several data subsets (disjoint, class-balanced)
 * and several seeds of its random probes, reported per summary value as the mean over the runs, the sample standard
 * deviation and their number. What varies between runs is what a reader's rerun would vary: the images the loss
 * averages over, and the probe vectors (power iteration's starts, Hutchinson's probes, noise draws, directions).
 */
import { MlInputError } from '../errors.js';
import { deriveSeed } from '../rng.js';
import type { MeasureOutput } from './measures.js';

export interface Replicates {
  /** Seeds of the random probes per data subset. */
  seeds: number;
  /** Disjoint data subsets. */
  subsets: number;
}

export interface Replicate {
  /** Which subset: its examples are the class-balanced walk's picks after the first subset × size. */
  subset: number;
  seed: number;
}

/** Subset-major; the first run is subset 0 with the analysis's own seed (a single replicate is the plain measure). */
export function replicatePlan(seed: number, r: Replicates): Replicate[] {
  for (const [name, v] of Object.entries(r)) {
    if (!Number.isInteger(v) || v < 1)
      throw new MlInputError(`replicates.${name} must be an integer >= 1, got ${v}`);
  }
  const plan: Replicate[] = [];
  for (let subset = 0; subset < r.subsets; subset++) {
    for (let j = 0; j < r.seeds; j++)
      plan.push({ subset, seed: j === 0 ? seed : deriveSeed(seed, 'replicate', j) });
  }
  return plan;
}

/**
 * One output from the runs' outputs: each summary value's mean under its own name, with `<name>.std` (sample
 * standard deviation; 0 for one run) and `<name>.n`; the first run's arrays, and each summary value's runs as the
 * array `replicates.<name>`, in plan order.
 */
export function summarizeReplicates(outputs: readonly MeasureOutput[]): MeasureOutput {
  const first = outputs[0];
  if (!first) throw new MlInputError('no replicate to summarize');
  const summary: Record<string, number> = {};
  const arrays: Record<string, Float64Array> = { ...first.arrays };
  for (const key of Object.keys(first.summary)) {
    const values = Float64Array.from(outputs, (o) => o.summary[key] ?? NaN);
    const n = values.length;
    const mean = values.reduce((a, b) => a + b, 0) / n;
    const std = n > 1 ? Math.sqrt(values.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
    summary[key] = mean;
    summary[`${key}.std`] = std;
    summary[`${key}.n`] = n;
    arrays[`replicates.${key}`] = values;
  }
  return { summary, arrays };
}
