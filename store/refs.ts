// A reference to one stored object: its key, the SHA-256 of its bytes and their count. Manifests list them, results
// carry them between workflows and activities, and a reader verifies the object against the sha256 before use.
// Pure zod, so that the contract (and through it the workflow sandbox) shares this one schema.
import { z } from 'zod';

export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

// eslint-disable-next-line no-control-regex
const KEY_BAD_CHARS = /[\u0000-\u001f\u007f-\u009f\\]/;
/** Half a UTF-16 pair: UTF-8 cannot encode it, so S3 would store another key than the one given. */
export const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Bytes of `s` in UTF-8, counted without TextEncoder or Buffer (the workflow sandbox imports this file). */
function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const c = ch.codePointAt(0) as number;
    n += c < 0x80 ? 1 : c < 0x800 ? 2 : c < 0x10000 ? 3 : 4;
  }
  return n;
}

/**
 * An object key as a person may write one in a spec (e.g. a stored logit set's manifest): the rules of the store's
 * checkKey, so that a key that could escape its prefix or alias another is refused where the spec is checked.
 */
export const objectKeySchema = z
  .string()
  .min(1)
  .refine((k) => utf8Length(k) <= 1024, 'must be at most 1024 bytes in UTF-8')
  .refine(
    (k) => !KEY_BAD_CHARS.test(k) && !LONE_SURROGATE.test(k),
    'must not contain control characters or backslashes',
  )
  .refine(
    (k) => !k.split('/').some((p) => p === '' || p === '.' || p === '..'),
    "must not have an empty, '.' or '..' path segment (or a leading or trailing '/')",
  );

export const objectRefSchema = z.object({
  key: z.string().min(1),
  sha256: sha256Schema,
  bytes: z.number().int().nonnegative(),
});

export type ObjectRef = z.infer<typeof objectRefSchema>;
