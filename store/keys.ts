/**
 * The key layout of the bucket, and content hashing for content-addressed keys.
 * Keys are readable paths so that an operator browsing the bucket sees the experiment
 * structure; every helper here is the only place its path shape is spelled out.
 */
import { createHash } from 'node:crypto';
import { StoreUsageError } from './errors.js';

export type LevelArtifact = 'weights' | 'mask' | 'rewind';

// One path segment from a caller-supplied id. Slashes or dot segments would let an id
// escape its folder or alias another experiment's keys.
const SEGMENT = /^[A-Za-z0-9][A-Za-z0-9._=-]*$/;

function segment(what: string, value: string): string {
  if (typeof value !== 'string' || !SEGMENT.test(value) || value.length > 200) {
    throw new StoreUsageError(
      `${what} ${JSON.stringify(value)} is not a valid key segment: use letters, digits, '.', '_', '=', '-' (not leading), at most 200 characters`,
    );
  }
  return value;
}

function index(what: string, value: number): number {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new StoreUsageError(`${what} must be a non-negative integer, got ${value}`);
  return value;
}

/** `experiments/<id>/<rest...>`; each part of `rest` is one path segment. */
export function experimentKey(experimentId: string, ...rest: string[]): string {
  return [
    'experiments',
    segment('experimentId', experimentId),
    ...rest.map((p) => segment('key part', p)),
  ].join('/');
}

/** `experiments/<id>/level-<L>/<weights|mask|rewind>.safetensors` */
export function levelTensorKey(experimentId: string, level: number, artifact: LevelArtifact): string {
  return experimentKey(
    experimentId,
    `level-${index('level', level)}`,
    `${segment('artifact', artifact)}.safetensors`,
  );
}

/** `experiments/<id>/level-<L>/metrics.json`, or `experiments/<id>/metrics.json` without a level. */
export function experimentMetricsKey(experimentId: string, level?: number): string {
  return level === undefined
    ? experimentKey(experimentId, 'metrics.json')
    : experimentKey(experimentId, `level-${index('level', level)}`, 'metrics.json');
}

/** `experiments/<id>/level-<L>/manifest.json`: published last, so a level with a manifest is complete. */
export function levelManifestKey(experimentId: string, level: number): string {
  return experimentKey(experimentId, `level-${index('level', level)}`, 'manifest.json');
}

/** `experiments/<id>/manifest.json` */
export function experimentManifestKey(experimentId: string): string {
  return experimentKey(experimentId, 'manifest.json');
}

/** `experiments/<id>/report/<file>`: what `lth report` wrote for this lineage (report.md, accuracy.svg, ...). */
export function experimentReportKey(experimentId: string, file: string): string {
  return experimentKey(experimentId, 'report', segment('report file', file));
}

export function runPrefix(runId: string): string {
  return `runs/${segment('runId', runId)}/`;
}

export function checkpointPrefix(runId: string): string {
  return `${runPrefix(runId)}checkpoints/`;
}

/** `runs/<runId>/checkpoints/step-<n>.safetensors` */
export function checkpointKey(runId: string, step: number): string {
  return `${checkpointPrefix(runId)}step-${index('step', step)}.safetensors`;
}

const CHECKPOINT_RE = /\/checkpoints\/step-(0|[1-9][0-9]*)\.safetensors$/;

/** The step of a checkpoint key, or null if the key is not one. */
export function parseCheckpointStep(key: string): number | null {
  const m = CHECKPOINT_RE.exec(key);
  if (!m?.[1]) return null;
  const n = Number(m[1]);
  return Number.isSafeInteger(n) ? n : null;
}

/**
 * The checkpoint key with the highest step among `keys` (e.g. from `store.list(checkpointPrefix(runId))`).
 * Steps are unpadded, so lexical order is wrong ("step-10" < "step-9"); compare numerically.
 */
export function latestCheckpointKey(keys: Iterable<string>): string | null {
  let best: { key: string; step: number } | null = null;
  for (const key of keys) {
    const step = parseCheckpointStep(key);
    if (step !== null && (best === null || step > best.step)) best = { key, step };
  }
  return best?.key ?? null;
}

/** `runs/<runId>/rewind/step-<k>.safetensors`: the run's whole training state after step k (an IMP rewind point). */
export function rewindStateKey(runId: string, step: number): string {
  return `${runPrefix(runId)}rewind/step-${index('step', step)}.safetensors`;
}

/** `runs/<runId>/final/weights.safetensors` */
export function finalWeightsKey(runId: string): string {
  return `${runPrefix(runId)}final/weights.safetensors`;
}

/** `runs/<runId>/metrics.json` */
export function runMetricsKey(runId: string): string {
  return `${runPrefix(runId)}metrics.json`;
}

/** `runs/<runId>/manifest.json`: published last, so a run with a manifest is complete. */
export function runManifestKey(runId: string): string {
  return `${runPrefix(runId)}manifest.json`;
}

export function logitsPrefix(teacherHash: string, dataset: string, format: string): string {
  return `logits/${segment('teacherHash', teacherHash)}/${segment('dataset', dataset)}/${segment('format', format)}/`;
}

/** `logits/<teacher-hash>/<dataset>/<format>/shard-<i>.bin` */
export function logitShardKey(teacherHash: string, dataset: string, format: string, shard: number): string {
  return `${logitsPrefix(teacherHash, dataset, format)}shard-${index('shard', shard)}.bin`;
}

/** `logits/<teacher-hash>/<dataset>/<format>/manifest.json` */
export function logitManifestKey(teacherHash: string, dataset: string, format: string): string {
  return `${logitsPrefix(teacherHash, dataset, format)}manifest.json`;
}

/**
 * Canonical JSON: object keys sorted by UTF-16 code unit, no insignificant whitespace
 * unless `indent` is given. Same JSON value → same text, whatever the insertion order.
 *
 * Object properties whose value is undefined are dropped, as JSON.stringify drops them,
 * so that a value hashes the same before and after a trip through Temporal's JSON payloads.
 * Everything that JSON would silently change is refused instead: NaN and ±Infinity
 * (JSON turns them into null), bigint, functions, symbols, undefined inside arrays,
 * Maps/Sets/typed arrays/class instances (JSON turns them into {} or index-keyed objects)
 * and cycles. Objects with toJSON (Date) are serialised through it.
 */
export function canonicalJson(value: unknown, indent?: number): string {
  const nl = indent ? '\n' : '';
  const colon = indent ? ': ' : ':';
  const pad = (depth: number): string => (indent ? ' '.repeat(indent * depth) : '');
  const ancestors = new Set<object>();

  const write = (v: unknown, path: string, depth: number): string => {
    if (v === null) return 'null';
    switch (typeof v) {
      case 'boolean':
        return v ? 'true' : 'false';
      case 'string':
        return JSON.stringify(v);
      case 'number':
        if (!Number.isFinite(v))
          throw new StoreUsageError(
            `${path}: ${v} is not representable in JSON (encode it as null or a string)`,
          );
        return JSON.stringify(v);
      case 'object':
        break;
      default:
        throw new StoreUsageError(`${path}: a ${typeof v} is not a JSON value`);
    }
    const obj = v as object;
    const toJSON = (obj as { toJSON?: unknown }).toJSON;
    if (typeof toJSON === 'function') return write(toJSON.call(obj), path, depth);
    if (ancestors.has(obj)) throw new StoreUsageError(`${path}: cyclic reference`);
    ancestors.add(obj);
    try {
      if (Array.isArray(obj)) {
        if (obj.length === 0) return '[]';
        const items = obj.map((item, i) => {
          if (item === undefined) throw new StoreUsageError(`${path}[${i}]: undefined is not a JSON value`);
          return pad(depth + 1) + write(item, `${path}[${i}]`, depth + 1);
        });
        return `[${nl}${items.join(`,${nl}`)}${nl}${pad(depth)}]`;
      }
      const proto: unknown = Object.getPrototypeOf(obj);
      if (proto !== Object.prototype && proto !== null) {
        const kind = (obj as { constructor?: { name?: string } }).constructor?.name ?? 'non-plain object';
        throw new StoreUsageError(`${path}: a ${kind} is not a plain JSON object`);
      }
      const keys = Object.keys(obj)
        .filter((k) => (obj as Record<string, unknown>)[k] !== undefined)
        .sort();
      if (keys.length === 0) return '{}';
      const props = keys.map(
        (k) =>
          pad(depth + 1) +
          JSON.stringify(k) +
          colon +
          write((obj as Record<string, unknown>)[k], `${path}.${k}`, depth + 1),
      );
      return `{${nl}${props.join(`,${nl}`)}${nl}${pad(depth)}}`;
    } finally {
      ancestors.delete(obj);
    }
  };

  return write(value, '$', 0);
}

/** Hex SHA-256 of the compact canonical JSON of `value`: the name of content-addressed data. */
export function contentHash(value: unknown): string {
  return sha256Hex(Buffer.from(canonicalJson(value), 'utf8'));
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** `analysis/<id>/<file>`: one geometry measure of one solution (content-addressed: id hashes everything it depends on). */
export function analysisKey(
  id: string,
  file: 'result.json' | 'arrays.safetensors' | 'progress.safetensors',
): string {
  return `analysis/${segment('analysis id', id)}/${file}`;
}
