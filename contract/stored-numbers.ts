// Numbers in stored JSON records (metrics.json, manifests): a diverged run's loss is NaN or Infinity, which JSON
// cannot hold, and the store refuses to write it silently as null. Records write such values as the strings
// 'NaN', 'Infinity', '-Infinity' (jsonSafe) and their schemas read them back as numbers (storedNumber), so a
// diverged run is published and found again like any other.
import { z } from 'zod';

const NON_FINITE = new Set(['NaN', 'Infinity', '-Infinity']);

// z.number() refuses NaN and ±Infinity, which are exactly the values this must carry.
export const storedNumber = z.preprocess(
  (v) => (typeof v === 'string' && NON_FINITE.has(v) ? Number(v) : v),
  z.custom<number>((v) => typeof v === 'number', 'expected a number'),
);

/** A deep copy with every non-finite number written as its string. */
export function jsonSafe<T>(value: T): T {
  if (typeof value === 'number') return (Number.isFinite(value) ? value : String(value)) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => jsonSafe(v)) as T;
  if (value && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)])) as T;
  }
  return value;
}
