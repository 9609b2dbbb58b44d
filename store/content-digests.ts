// The SHA-256 of every object under a prefix, read through the store (so each read is also checked against the
// checksum recorded with the object): what "two runs stored the same bytes" is decided on (the chaos run, the
// cluster profile's comparison with the embedded one).
import { createHash } from 'node:crypto';

import type { ArtifactStore } from './artifact-store.js';

/** key → hex SHA-256 of its content, for every object under `prefix` (all of them by default). */
export async function contentDigests(store: ArtifactStore, prefix = ''): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const o of await store.list(prefix)) {
    const { bytes } = await store.getBytes(o.key);
    out.set(o.key, createHash('sha256').update(bytes).digest('hex'));
  }
  return out;
}
