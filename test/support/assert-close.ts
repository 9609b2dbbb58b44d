// Element-wise closeness of two arrays relative to the expected array's largest magnitude (at least 1), with the
// first offending index in the message.
import assert from 'node:assert/strict';

export function assertClose(
  name: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  rtol: number,
): void {
  assert.equal(actual.length, expected.length, `${name}: length`);
  let scale = 0;
  for (let i = 0; i < expected.length; i++) scale = Math.max(scale, Math.abs(expected[i] as number));
  for (let i = 0; i < expected.length; i++) {
    const [a, e] = [actual[i] as number, expected[i] as number];
    assert.ok(Math.abs(a - e) <= rtol * Math.max(1, scale), `${name}[${i}]: ${a} vs ${e} (scale ${scale})`);
  }
}
