/**
 * The manifest of one precompute: one teacher's outputs on one dataset view (dataset, split,
 * augmentation policy and seed), in one format, cut into shards of `shardSize` consecutive
 * samples. Shard i covers [i·shardSize, min((i+1)·shardSize, sampleCount)), so a reader finds
 * a sample's shard by division, and the shards cover every sample exactly once.
 *
 * It is published last, through ArtifactStore.publishManifest, which checks that every
 * shard object exists with the listed size and checksum: a manifest means a complete set.
 * `entries` (what the store verifies) repeats `shards` without the index ranges; build it
 * with `logitManifestEntries`, and `parseLogitManifest` checks that the two agree.
 *
 * The augmentation is part of the identity because a soft label belongs to the view the
 * teacher saw: a student fed other crops or flips than the stored ones learns from wrong
 * targets (Beyer et al., 2022). Readers refuse a manifest whose dataset, split or
 * augmentation differs from the student's data (see LogitReader).
 */
import { z } from 'zod';
import type { ArtifactStore, ObjectRef, ReadManifestOptions } from './artifact-store.js';
import { ArtifactFormatError, formatIssues, StoreUsageError } from './errors.js';
import { objectRefSchema, sha256Schema } from './refs.js';
import { contentHash, logitManifestKey, logitShardKey } from './keys.js';
import { LOGIT_FORMATS, MAX_LOGIT_CLASSES, type LogitFormat } from './logit-shards.js';

const count = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);

export const augmentationSchema = z.object({
  /** The policy's name, e.g. 'none' or 'random-crop-flip'; opaque to the store. */
  policy: z.string().min(1),
  /** The seed that drew the random views the teacher saw. */
  seed: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
});
export type Augmentation = z.infer<typeof augmentationSchema>;

/** What a student trains on: a stored logit set is usable only for exactly this. */
export interface DataIdentity {
  dataset: string;
  split: string;
  augmentation: Augmentation;
}

export const logitShardRefSchema = objectRefSchema.extend({ start: count, end: count });
export type LogitShardRef = z.infer<typeof logitShardRefSchema>;

export const logitManifestSchema = z
  .object({
    kind: z.literal('teacher-logits'),
    teacher: z.object({
      name: z.string().min(1),
      /** SHA-256 of the teacher's weights object: which trained teacher produced these. */
      weightsSha256: sha256Schema,
    }),
    dataset: z.string().min(1),
    split: z.string().min(1),
    augmentation: augmentationSchema,
    format: z.enum(LOGIT_FORMATS),
    /**
     * What the rows are: the teacher's logits (absent: logits), or its last feature map, flattened (h, w, c), of
     * `shape` [h, w, c] (then `classes` is the values per sample, h·w·c).
     */
    outputs: z.enum(['logits', 'features']).optional(),
    shape: z.array(z.number().int().min(1)).length(3).optional(),
    /** top-k only: how many probabilities per sample are stored. */
    k: z.number().int().min(1).optional(),
    classes: z.number().int().min(1).max(MAX_LOGIT_CLASSES),
    sampleCount: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    shardSize: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
    shards: z.array(logitShardRefSchema).min(1),
    entries: z.array(objectRefSchema),
  })
  .superRefine((m, ctx) => {
    const issue = (path: (string | number)[], message: string): void => {
      ctx.addIssue({ code: 'custom', path, message });
    };
    if (m.format === 'top-k') {
      if (m.k === undefined) issue(['k'], 'required for format top-k');
      else if (m.k > m.classes) issue(['k'], `${m.k} exceeds classes ${m.classes}`);
    } else if (m.k !== undefined) issue(['k'], `only meaningful for format top-k, not ${m.format}`);
    if (m.outputs === 'features') {
      if (m.format === 'top-k') issue(['format'], 'a feature map is stored as float32 or float16, not top-k');
      if (m.shape === undefined) issue(['shape'], 'required for outputs features');
      else if (m.shape.reduce((a, b) => a * b, 1) !== m.classes)
        issue(
          ['shape'],
          `[${m.shape.join(', ')}] holds ${m.shape.reduce((a, b) => a * b, 1)} values, classes is ${m.classes}`,
        );
    } else if (m.shape !== undefined) issue(['shape'], 'only meaningful for outputs features');
    const want = Math.ceil(m.sampleCount / m.shardSize);
    if (m.shards.length !== want) {
      issue(
        ['shards'],
        `${m.sampleCount} samples in shards of ${m.shardSize} make ${want} shards, the manifest lists ${m.shards.length}`,
      );
      return;
    }
    m.shards.forEach((s, i) => {
      const start = i * m.shardSize;
      const end = Math.min(start + m.shardSize, m.sampleCount);
      if (s.start !== start) issue(['shards', i, 'start'], `expected ${start}, got ${s.start}`);
      if (s.end !== end) issue(['shards', i, 'end'], `expected ${end}, got ${s.end}`);
    });
    if (m.entries.length !== m.shards.length) {
      issue(['entries'], `lists ${m.entries.length} objects for ${m.shards.length} shards`);
      return;
    }
    m.entries.forEach((e, i) => {
      const s = m.shards[i] as LogitShardRef;
      for (const f of ['key', 'sha256', 'bytes'] as const)
        if (e[f] !== s[f])
          issue(
            ['entries', i, f],
            `${JSON.stringify(e[f])} differs from shards[${i}].${f} ${JSON.stringify(s[f])}`,
          );
    });
  });

export type LogitManifest = z.infer<typeof logitManifestSchema>;

/** The manifest's fields without `kind` and `entries`, which `buildLogitManifest` fills in. */
export type LogitManifestInput = Omit<LogitManifest, 'kind' | 'entries'>;

/** Validates a manifest read from `key`; ArtifactFormatError naming the key and every bad field. */
export function parseLogitManifest(raw: unknown, key: string): LogitManifest {
  const r = logitManifestSchema.safeParse(raw);
  if (!r.success)
    throw new ArtifactFormatError(key, `not a valid teacher-logits manifest: ${formatIssues(r.error)}`, {
      cause: r.error,
    });
  return r.data;
}

/** The `entries` the store verifies: the shards' {key, sha256, bytes}. */
export function logitManifestEntries(shards: readonly LogitShardRef[]): ObjectRef[] {
  return shards.map(({ key, sha256, bytes }) => ({ key, sha256, bytes }));
}

/** A complete, validated manifest from its fields; StoreUsageError naming the bad field. */
export function buildLogitManifest(input: LogitManifestInput): LogitManifest {
  const value = { ...input, kind: 'teacher-logits' as const, entries: logitManifestEntries(input.shards) };
  const r = logitManifestSchema.safeParse(value);
  if (!r.success) throw new StoreUsageError(`invalid teacher-logits manifest: ${formatIssues(r.error)}`);
  return r.data;
}

/**
 * Publishes a manifest after its shards (validated first, then every entry checked by
 * the store). Returns the manifest object's ref.
 */
export async function publishLogitManifest(
  store: ArtifactStore,
  key: string,
  manifest: LogitManifestInput | LogitManifest,
): Promise<ObjectRef> {
  const input: Partial<LogitManifest> = { ...manifest };
  delete input.kind;
  delete input.entries;
  return store.publishManifest(key, buildLogitManifest(input as LogitManifestInput));
}

/**
 * Reads and validates a manifest. By default only the checksums recorded with the shards
 * are compared (one HEAD each): the reader hashes every shard it downloads anyway.
 */
export async function readLogitManifest(
  store: ArtifactStore,
  key: string,
  opts: ReadManifestOptions & { expectSha256?: string } = {},
): Promise<LogitManifest> {
  const raw = await store.readManifest(key, { verify: 'recorded', ...opts });
  return parseLogitManifest(raw, key);
}

/** Everything that determines a logit set's content: its name in the store. */
export interface LogitSetIdentity extends DataIdentity {
  teacherWeightsSha256: string;
  format: LogitFormat;
  k?: number;
  classes: number;
  sampleCount: number;
  shardSize: number;
  /** Absent for logits: the keys of every logit set made before feature sets existed stay what they were. */
  outputs?: 'features';
  shape?: number[];
}

/**
 * Content-addressed keys for a logit set. The `<teacher-hash>` segment of the layout
 * `logits/<teacher-hash>/<dataset>/<format>/...` is the hash of everything that determines
 * the shards (teacher weights, split, augmentation, k, shard size, ...), so that two
 * augmentation seeds or splits never share keys, and the same inputs always do.
 */
export function logitSetKeys(id: LogitSetIdentity): {
  hash: string;
  manifestKey: string;
  shardKey: (i: number) => string;
} {
  const hash = contentHash({ kind: 'teacher-logits', ...id });
  const format = id.format === 'top-k' ? `top-${id.k}` : id.format;
  return {
    hash,
    manifestKey: logitManifestKey(hash, id.dataset, format),
    shardKey: (i: number) => logitShardKey(hash, id.dataset, format, i),
  };
}
