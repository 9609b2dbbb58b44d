/**
 * The artifact store: tensors, JSON and raw bytes in one S3 bucket (MinIO), each object
 * carrying the SHA-256 of its content as user metadata written in the same PUT.
 *
 * Guarantees:
 * - every read hashes the bytes it received and compares with the recorded checksum
 *   (and the caller's expected one); a mismatch is an IntegrityError, never silent;
 * - a missing object is an ArtifactNotFoundError; both are non-retryable;
 * - a transient fault (connection refused or reset, a silent server, a 5xx, a short read) is
 *   retried here with backoff, within bounds (store/retry.ts); when the tries run out it is a
 *   StoreUnavailableError naming the endpoint, an ordinary error, so that Temporal retries it;
 * - a PUT replaces an object atomically, so rewriting a key with the same content is
 *   idempotent and a concurrent reader sees either version, never a mix;
 * - manifests are written after the objects they list and readers trust only what a
 *   manifest lists, so a crash mid-publish leaves no half-visible result.
 */
import { readFileSync } from 'node:fs';
import { IncomingMessage } from 'node:http';
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import * as Minio from 'minio';
import { z } from 'zod';
import { s3ConfigFromEnv, type S3Config } from './config.js';
import {
  ArtifactFormatError,
  ArtifactNotFoundError,
  IntegrityError,
  S3ConfigError,
  StoreUsageError,
  formatIssues,
} from './errors.js';
import { canonicalJson } from './keys.js';
import { LONE_SURROGATE, objectRefSchema, sha256Schema, type ObjectRef } from './refs.js';
import { DEFAULT_STORE_RETRY, guardedAgent, withRetries, type RetryContext } from './retry.js';
import { decodeSafetensors, encodeSafetensors, SafetensorsError, type NamedTensors } from './safetensors.js';

export type { ObjectRef };

export interface ObjectStat extends ObjectRef {
  lastModified: Date;
}

export interface ListedObject {
  key: string;
  bytes: number;
  lastModified: Date;
}

export interface Manifest {
  entries: ObjectRef[];
  [k: string]: unknown;
}

export interface ReadOptions {
  /** Also require this checksum, e.g. the one a manifest or a workflow result recorded. */
  expectSha256?: string;
}

export interface ReadManifestOptions {
  /**
   * 'content' (default) downloads and hashes every entry, which catches an object
   * overwritten behind the store's back. 'recorded' only compares the checksums recorded
   * with the objects (one HEAD each): cheap for large shard sets, and still safe if every
   * entry is later read with `expectSha256: entry.sha256`, since that read hashes it.
   */
  verify?: 'content' | 'recorded';
}

/** User-metadata name of the checksum; S3 sends it as the x-amz-meta-sha256 header. */
export const SHA256_META = 'sha256';
const SHA256_HEADER = `x-amz-meta-${SHA256_META}`;

const HEX64 = /^[0-9a-f]{64}$/;

export const manifestSchema = z.looseObject({ entries: z.array(objectRefSchema) });

// Enough parallel HEAD/GET requests to hide latency without opening hundreds of sockets.
const VERIFY_CONCURRENCY = 8;

// S3 error codes that mean "there is no such object". A missing bucket is reported the
// same way: for a reader, the object is just as absent.
const NOT_FOUND_CODES = new Set(['NoSuchKey', 'NotFound', 'NoSuchBucket']);

function isNotFound(err: unknown): boolean {
  return err instanceof Minio.S3Error && err.code !== undefined && NOT_FOUND_CODES.has(err.code);
}

function s3Code(err: unknown): string | undefined {
  return err instanceof Minio.S3Error ? err.code : undefined;
}

/** Rejects keys that S3 would accept but that break the readable layout or alias other keys. */
export function checkKey(key: string): string {
  if (typeof key !== 'string' || key.length === 0)
    throw new StoreUsageError('object key must be a non-empty string');
  if (Buffer.byteLength(key, 'utf8') > 1024)
    throw new StoreUsageError(`object key is longer than 1024 bytes: '${key.slice(0, 80)}...'`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f-\u009f\\]/.test(key) || LONE_SURROGATE.test(key))
    throw new StoreUsageError(`object key ${JSON.stringify(key)} contains a control character or backslash`);
  const parts = key.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new StoreUsageError(
      `object key '${key}' has an empty, '.' or '..' path segment (or a leading/trailing '/')`,
    );
  }
  return key;
}

async function mapLimit<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    // Stop taking new items once one failed: the caller only sees the first error.
    while (!failed && next < items.length) {
      const i = next++;
      try {
        out[i] = await fn(items[i] as T);
      } catch (e) {
        failed = true;
        throw e;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export interface StoreOptions {
  /** Where retries are reported; default: a line on stderr. */
  log?: (line: string) => void;
}

/** scheme://host:port of a configuration, as messages name it. */
export function storeEndpoint(cfg: S3Config): string {
  const host = cfg.endPoint.includes(':') ? `[${cfg.endPoint}]` : cfg.endPoint;
  return `${cfg.useSSL ? 'https' : 'http'}://${host}:${cfg.port}`;
}

export class ArtifactStore {
  readonly bucket: string;
  /** scheme://host:port of the S3 server. */
  readonly endpoint: string;
  private readonly client: Minio.Client;
  private readonly region: string | undefined;
  private readonly retry: RetryContext;
  private bucketReady: Promise<void> | null = null;

  constructor(cfg: S3Config, opts: StoreOptions = {}) {
    this.bucket = cfg.bucket;
    this.region = cfg.region;
    this.endpoint = storeEndpoint(cfg);
    const policy = { ...DEFAULT_STORE_RETRY, ...cfg.retry };
    this.retry = {
      policy,
      endpoint: this.endpoint,
      bucket: cfg.bucket,
      log: opts.log ?? ((line) => process.stderr.write(`${line}\n`)),
    };
    let ca: Buffer | undefined;
    if (cfg.caFile !== undefined) {
      try {
        ca = readFileSync(cfg.caFile);
      } catch (e) {
        throw new S3ConfigError(`S3_CA_FILE: cannot read ${cfg.caFile}: ${(e as Error).message}`);
      }
    }
    // Every socket bounded (connect, silence), so a hung server fails a try instead of stalling it for ever.
    const transportAgent = guardedAgent(policy, this.endpoint, { useSSL: cfg.useSSL, ...(ca ? { ca } : {}) });
    this.client = new Minio.Client({
      endPoint: cfg.endPoint,
      port: cfg.port,
      useSSL: cfg.useSSL,
      accessKey: cfg.accessKey,
      secretKey: cfg.secretKey,
      ...(cfg.region !== undefined ? { region: cfg.region } : {}),
      transportAgent,
    });
  }

  /** `fn`, sent again on transient faults (store/retry.ts). */
  private send<T>(what: string, fn: () => Promise<T>): Promise<T> {
    return withRetries(what, this.retry, fn);
  }

  /**
   * Creates the bucket if it does not exist. Safe against concurrent callers, in this
   * process (one shared attempt) and across processes (losing the creation race is success).
   * Writes call it on demand; a failed attempt is forgotten so the next call retries.
   */
  ensureBucket(): Promise<void> {
    if (!this.bucketReady) {
      this.bucketReady = this.createBucketIfMissing().catch((e: unknown) => {
        this.bucketReady = null;
        throw e;
      });
    }
    return this.bucketReady;
  }

  private async createBucketIfMissing(): Promise<void> {
    const exists = () =>
      this.send(`HEAD bucket '${this.bucket}'`, () => this.client.bucketExists(this.bucket));
    if (await exists()) return;
    try {
      await this.send(`create bucket '${this.bucket}'`, () =>
        this.client.makeBucket(this.bucket, this.region ?? 'us-east-1'),
      );
    } catch (e) {
      const code = s3Code(e);
      if (code === 'BucketAlreadyOwnedByYou') return;
      // On AWS this code means another account owns the name; on MinIO it can also be
      // the race loser. Either way, the bucket is usable iff we can see it now.
      if (code === 'BucketAlreadyExists' && (await exists())) return;
      throw e;
    }
  }

  // ---- writes -------------------------------------------------------------

  async putBytes(key: string, bytes: Uint8Array, opts: { contentType?: string } = {}): Promise<ObjectRef> {
    checkKey(key);
    const body = asBuffer(bytes);
    const sha256 = createHash('sha256').update(body).digest('hex');
    await this.ensureBucket();
    try {
      // The checksum travels in the same PUT as the data, so no reader can ever see the
      // data without it or with a stale one.
      // A PUT of the same bytes is idempotent, so a failed one is simply sent again.
      await this.send(`PUT '${key}'`, () =>
        this.client.putObject(this.bucket, key, body, body.length, {
          [SHA256_META]: sha256,
          'Content-Type': opts.contentType ?? 'application/octet-stream',
        }),
      );
    } catch (e) {
      // The bucket was deleted after we created it: forget that, so the caller's retry
      // recreates it instead of failing the same way forever.
      if (s3Code(e) === 'NoSuchBucket') this.bucketReady = null;
      throw e;
    }
    return { key, sha256, bytes: body.length };
  }

  async putTensors(
    key: string,
    tensors: NamedTensors,
    metadata: Record<string, string> = {},
  ): Promise<ObjectRef> {
    checkKey(key);
    let file: Uint8Array;
    try {
      file = encodeSafetensors(tensors, metadata);
    } catch (e) {
      if (e instanceof SafetensorsError)
        throw new StoreUsageError(`cannot write '${key}': ${e.message}`, { cause: e });
      throw e;
    }
    return this.putBytes(key, file, { contentType: 'application/octet-stream' });
  }

  /** Writes canonical JSON (sorted keys), so equal values give equal bytes and checksums. */
  async putJson(key: string, value: unknown): Promise<ObjectRef> {
    checkKey(key);
    let text: string;
    try {
      text = canonicalJson(value, 2) + '\n';
    } catch (e) {
      if (e instanceof StoreUsageError)
        throw new StoreUsageError(`cannot write '${key}' as JSON: ${e.message}`, { cause: e });
      throw e;
    }
    return this.putBytes(key, Buffer.from(text, 'utf8'), { contentType: 'application/json' });
  }

  async remove(key: string): Promise<void> {
    checkKey(key);
    try {
      await this.send(`DELETE '${key}'`, () => this.client.removeObject(this.bucket, key));
    } catch (e) {
      // Removing what is not there is success: remove is idempotent.
      if (isNotFound(e)) return;
      throw e;
    }
  }

  // ---- reads --------------------------------------------------------------

  async getBytes(key: string, opts: ReadOptions = {}): Promise<{ bytes: Buffer; ref: ObjectRef }> {
    const { body, ref } = await this.readVerified(key, opts.expectSha256, true);
    return { bytes: body, ref };
  }

  async getTensors(
    key: string,
    opts: ReadOptions = {},
  ): Promise<{ tensors: NamedTensors; metadata: Record<string, string>; ref: ObjectRef }> {
    const { body, ref } = await this.readVerified(key, opts.expectSha256, true);
    try {
      const { tensors, metadata } = decodeSafetensors(body);
      return { tensors, metadata, ref };
    } catch (e) {
      if (e instanceof SafetensorsError)
        throw new ArtifactFormatError(key, `not a valid safetensors file: ${e.message}`, { cause: e });
      throw e;
    }
  }

  /** Reads JSON and validates it; failures name the key and the offending field. */
  async getJson<T>(key: string, schema: z.ZodType<T>, opts: ReadOptions = {}): Promise<T> {
    const { body } = await this.readVerified(key, opts.expectSha256, true);
    let raw: unknown;
    try {
      raw = JSON.parse(body.toString('utf8'));
    } catch (e) {
      throw new ArtifactFormatError(key, `not valid JSON: ${(e as Error).message}`, { cause: e });
    }
    const r = schema.safeParse(raw);
    if (!r.success)
      throw new ArtifactFormatError(key, `does not match the expected schema: ${formatIssues(r.error)}`, {
        cause: r.error,
      });
    return r.data;
  }

  /** Downloads and hashes an object without keeping it in memory. */
  async verify(key: string, opts: ReadOptions = {}): Promise<ObjectRef> {
    return (await this.readVerified(key, opts.expectSha256, false)).ref;
  }

  async exists(key: string): Promise<boolean> {
    checkKey(key);
    try {
      await this.send(`HEAD '${key}'`, () => this.client.statObject(this.bucket, key));
      return true;
    } catch (e) {
      if (isNotFound(e)) return false;
      throw e;
    }
  }

  /** Size and recorded checksum, from a HEAD request: the content is not read, hence not verified. */
  async stat(key: string): Promise<ObjectStat> {
    checkKey(key);
    let st: Minio.BucketItemStat;
    try {
      st = await this.send(`HEAD '${key}'`, () => this.client.statObject(this.bucket, key));
    } catch (e) {
      if (isNotFound(e)) throw new ArtifactNotFoundError(key, this.bucket, { cause: e });
      throw e;
    }
    const recorded: unknown = (st.metaData as Record<string, unknown>)[SHA256_META];
    return { key, sha256: this.checkRecorded(key, recorded), bytes: st.size, lastModified: st.lastModified };
  }

  /**
   * Every object under `prefix`, sorted by key. A listing shows what happens to exist,
   * including objects of unfinished publishes: use manifests to decide what to trust.
   */
  async list(prefix: string): Promise<ListedObject[]> {
    let out: ListedObject[] = [];
    try {
      // A listing cut off half-way is started again from the beginning.
      out = await this.send(`LIST '${prefix}'`, () => {
        const stream = this.client.listObjectsV2(this.bucket, prefix, true);
        const items: ListedObject[] = [];
        return new Promise<ListedObject[]>((resolve, reject) => {
          stream.on('data', (item: Minio.BucketItem) => {
            if (item.name !== undefined)
              items.push({ key: item.name, bytes: item.size, lastModified: item.lastModified });
          });
          stream.on('error', reject);
          stream.on('end', () => resolve(items));
        });
      });
    } catch (e) {
      if (s3Code(e) === 'NoSuchBucket') return [];
      throw e;
    }
    return out.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
  }

  // ---- manifests ----------------------------------------------------------

  /**
   * Writes a manifest after checking that every entry exists with the listed size and
   * recorded checksum, which catches publishing before the data is written. Publishing
   * the same manifest again is idempotent (canonical JSON).
   */
  async publishManifest(key: string, manifest: Manifest): Promise<ObjectRef> {
    checkKey(key);
    const r = manifestSchema.safeParse(manifest);
    if (!r.success) throw new StoreUsageError(`manifest '${key}' is invalid: ${formatIssues(r.error)}`);
    this.checkEntryKeys(key, r.data.entries, (msg) => new StoreUsageError(msg));
    await mapLimit(r.data.entries, VERIFY_CONCURRENCY, async (entry) => {
      const st = await this.stat(entry.key);
      if (st.sha256 !== entry.sha256)
        throw new IntegrityError(
          entry.key,
          entry.sha256,
          st.sha256,
          `object's recorded checksum differs from manifest '${key}'`,
        );
      if (st.bytes !== entry.bytes)
        throw new IntegrityError(
          entry.key,
          entry.sha256,
          st.sha256,
          `manifest '${key}' lists ${entry.bytes} bytes, object has ${st.bytes}`,
        );
    });
    // The parsed copy, so entries are stored as exactly {key, sha256, bytes} whatever
    // extra fields (e.g. lastModified from stat) the caller's objects carried.
    return this.putJson(key, r.data);
  }

  /**
   * Reads a manifest and re-verifies every entry (see ReadManifestOptions.verify). Throws
   * ArtifactNotFoundError for a missing entry and IntegrityError for one whose content or
   * size differs from what the manifest lists: a partial or damaged result is never returned.
   */
  async readManifest(key: string, opts: ReadManifestOptions & ReadOptions = {}): Promise<Manifest> {
    const manifest = await this.getJson(
      key,
      manifestSchema,
      opts.expectSha256 !== undefined ? { expectSha256: opts.expectSha256 } : {},
    );
    this.checkEntryKeys(key, manifest.entries, (msg) => new ArtifactFormatError(key, msg));
    const deep = (opts.verify ?? 'content') === 'content';
    await mapLimit(manifest.entries, VERIFY_CONCURRENCY, async (entry) => {
      const ref = deep
        ? await this.verify(entry.key, { expectSha256: entry.sha256 })
        : await this.stat(entry.key);
      if (!deep && ref.sha256 !== entry.sha256) {
        throw new IntegrityError(
          entry.key,
          entry.sha256,
          ref.sha256,
          `recorded checksum differs from manifest '${key}'`,
        );
      }
      if (ref.bytes !== entry.bytes) {
        throw new IntegrityError(
          entry.key,
          entry.sha256,
          ref.sha256,
          `manifest '${key}' lists ${entry.bytes} bytes, object has ${ref.bytes}`,
        );
      }
    });
    return manifest;
  }

  private checkEntryKeys(
    manifestKey: string,
    entries: readonly ObjectRef[],
    fail: (msg: string) => Error,
  ): void {
    const seen = new Set<string>();
    for (const e of entries) {
      try {
        checkKey(e.key);
      } catch (err) {
        throw fail(`manifest '${manifestKey}' lists an invalid key: ${(err as Error).message}`);
      }
      if (e.key === manifestKey) throw fail(`manifest '${manifestKey}' lists itself`);
      if (seen.has(e.key)) throw fail(`manifest '${manifestKey}' lists '${e.key}' twice`);
      seen.add(e.key);
    }
  }

  // ---- internals ----------------------------------------------------------

  /** `actual` is the content hash when the content was read, for the error message. */
  private checkRecorded(key: string, recorded: unknown, actual = '(content not read)'): string {
    const r = sha256Schema.safeParse(recorded);
    if (!r.success) {
      // An object without a valid checksum was not written by this store (or its metadata
      // was tampered with): nothing vouches for its bytes.
      const found = recorded === undefined ? 'it is missing' : `found ${JSON.stringify(recorded)}`;
      throw new IntegrityError(
        key,
        '(none recorded)',
        actual,
        `the object has no valid x-amz-meta-sha256 checksum (${found}), so nothing vouches for its content`,
      );
    }
    return r.data;
  }

  private async readVerified(
    key: string,
    expectSha256: string | undefined,
    keep: true,
  ): Promise<{ body: Buffer; ref: ObjectRef }>;
  private async readVerified(
    key: string,
    expectSha256: string | undefined,
    keep: false,
  ): Promise<{ body: null; ref: ObjectRef }>;
  private async readVerified(
    key: string,
    expectSha256: string | undefined,
    keep: boolean,
  ): Promise<{ body: Buffer | null; ref: ObjectRef }> {
    checkKey(key);
    if (expectSha256 !== undefined && !HEX64.test(expectSha256)) {
      throw new StoreUsageError(
        `expectSha256 for '${key}' must be 64 lowercase hex digits, got ${JSON.stringify(expectSha256)}`,
      );
    }
    // GET and body together are one try: a connection cut mid-body is sent again from the start.
    const got = await this.send(`GET '${key}'`, () => this.download(key, keep));
    const { recordedRaw, actual, received } = got;
    const recorded = this.checkRecorded(key, recordedRaw, actual);
    if (actual !== recorded)
      throw new IntegrityError(
        key,
        recorded,
        actual,
        'content does not match the checksum recorded with the object',
      );
    if (expectSha256 !== undefined && actual !== expectSha256) {
      throw new IntegrityError(
        key,
        expectSha256,
        actual,
        'content does not match the checksum the caller expected',
      );
    }
    return {
      body: keep ? Buffer.concat(got.chunks, received) : null,
      ref: { key, sha256: actual, bytes: received },
    };
  }

  /** One GET: the recorded checksum from the same response, the content's hash and (if `keep`) its bytes. */
  private async download(
    key: string,
    keep: boolean,
  ): Promise<{ recordedRaw: unknown; actual: string; received: number; chunks: Buffer[] }> {
    let res: Readable;
    try {
      res = await this.client.getObject(this.bucket, key);
    } catch (e) {
      if (isNotFound(e)) throw new ArtifactNotFoundError(key, this.bucket, { cause: e });
      throw e;
    }
    // The checksum must come from the same response as the bytes: a separate HEAD could
    // see a newer version of the object and report a false mismatch.
    let recordedRaw: unknown;
    let contentLength: number | undefined;
    const hash = createHash('sha256');
    const chunks: Buffer[] = [];
    let received = 0;
    try {
      if (res instanceof IncomingMessage) {
        recordedRaw = res.headers[SHA256_HEADER];
        const cl = res.headers['content-length'];
        contentLength = cl !== undefined ? Number(cl) : undefined;
      } else {
        const st = await this.client.statObject(this.bucket, key);
        recordedRaw = (st.metaData as Record<string, unknown>)[SHA256_META];
      }
      for await (const chunk of res as AsyncIterable<Buffer>) {
        hash.update(chunk);
        received += chunk.length;
        if (keep) chunks.push(chunk);
      }
    } finally {
      // Frees the socket if we bailed out before the body was consumed.
      if (!res.readableEnded) res.destroy();
    }
    // A connection cut mid-body is a transient fault, not corruption: report it as a
    // plain error so it is retried instead of failing the workflow as an IntegrityError.
    if (contentLength !== undefined && received !== contentLength) {
      throw new Error(`short read of '${key}': received ${received} of ${contentLength} bytes`);
    }
    return { recordedRaw, actual: hash.digest('hex'), received, chunks };
  }
}

/** A store configured from S3_* variables; throws S3ConfigError when S3_ENDPOINT is unset. */
export function storeFromEnv(env: Record<string, string | undefined> = process.env): ArtifactStore {
  const cfg = s3ConfigFromEnv(env);
  if (!cfg) {
    throw new S3ConfigError(
      'S3_ENDPOINT is not set: point it at an S3-compatible server, e.g. S3_ENDPOINT=http://127.0.0.1:9000 with S3_ACCESS_KEY and S3_SECRET_KEY (S3_BUCKET defaults to "lth")',
    );
  }
  return new ArtifactStore(cfg);
}
