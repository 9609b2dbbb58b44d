// A reference to one stored object: its key, the SHA-256 of its bytes and their count. Manifests list them, results
// carry them between workflows and activities, and a reader verifies the object against the sha256 before use.
// Pure zod, so that the contract (and through it the workflow sandbox) shares this one schema.
import { z } from 'zod';

export const sha256Schema = z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits');

export const objectRefSchema = z.object({
  key: z.string().min(1),
  sha256: sha256Schema,
  bytes: z.number().int().nonnegative(),
});

export type ObjectRef = z.infer<typeof objectRefSchema>;
