/**
 * fsck of the artifact store: walks the bucket (or a prefix of it), hashes every object and checks it against
 * what vouches for it, and says what is damaged and what to do.
 *
 * What vouches for an object:
 * - an object a manifest lists: the manifest's entry (sha256 and size). The manifest is the reference, so
 *   other content under the same key is caught even when the object's own checksum header matches it;
 * - every object: the checksum recorded with it (x-amz-meta-sha256), which the store compares on every read;
 * - a manifest: its own checksum header, then its schema (a logit manifest also its shard ranges).
 *
 * What it reports (`FsckFinding.problem`):
 * - `corrupt`: content differs from its manifest entry or its own checksum (flipped byte, truncation, other
 *   content), or a manifest that cannot be read;
 * - `missing`: a manifest lists a key that does not exist;
 * - `orphan`: provably garbage: nothing lists it and nothing will read it (checkpoints of a finished run or
 *   level, the partial state of a finished measure, a shard a published logit set does not list);
 * - `unlisted`: not damage, ambiguous: objects without their manifest (a level, run or logit set being published,
 *   or whose publish was killed; a rerun rewrites them) and keys outside the known layout. Never removed.
 * Objects that are unlisted by design (rewind points under runs/, checkpoints of unfinished runs, reports,
 * finished analyses) are checked against their own checksum and counted in `kept`.
 *
 * `repair` removes corrupt derived objects together with the manifest that lists them (a missing entry also
 * removes its manifest), corrupt manifests, and orphans. Without its manifest a level, run or logit set is
 * recomputed by the next execution of its spec (the workflows decide "done" by the manifest alone), and
 * everything here is content-addressed, so the recomputed objects get the same keys. Objects outside the known
 * layout and ambiguous ones are never removed. Transient errors (connection, 5xx) abort the check: nothing is
 * repaired on partial information.
 *
 * Uses only the public ArtifactStore API: nothing here bypasses the store's own verification.
 */
import { ArtifactNotFoundError, IntegrityError } from './errors.js';
import { type ArtifactStore, type Manifest, manifestSchema } from './artifact-store.js';
import { parseLogitManifest } from './logit-manifest.js';
import { parseCheckpointStep } from './keys.js';

export type FsckProblem = 'corrupt' | 'missing' | 'orphan' | 'unlisted';

/** What an object is, from its key (the layout of store/keys.ts). */
export type ObjectKind =
  | 'manifest'
  | 'run-weights'
  | 'run-metrics'
  | 'checkpoint'
  | 'rewind-state'
  | 'level-weights'
  | 'level-mask'
  | 'level-rewind'
  | 'level-metrics'
  | 'logit-shard'
  | 'report'
  | 'analysis-result'
  | 'analysis-arrays'
  | 'analysis-progress'
  | 'unknown';

export const OBJECT_KIND_LABEL: Record<ObjectKind, string> = {
  manifest: 'manifest',
  'run-weights': 'run weights',
  'run-metrics': 'run metrics',
  checkpoint: 'checkpoint',
  'rewind-state': 'rewind state',
  'level-weights': 'level weights',
  'level-mask': 'level mask',
  'level-rewind': 'level rewind',
  'level-metrics': 'level metrics',
  'logit-shard': 'logit shard',
  report: 'report',
  'analysis-result': 'analysis result',
  'analysis-arrays': 'analysis arrays',
  'analysis-progress': 'analysis progress',
  unknown: 'unknown',
};

export interface FsckFinding {
  problem: FsckProblem;
  key: string;
  kind: ObjectKind;
  /** What is wrong (or, for `unlisted`, why it is there). */
  detail: string;
  /** The manifest that lists the key, when one does. */
  listedBy?: string;
  /** What to do next. */
  next: string;
  /** The keys `repair` removes for this finding (empty: it removes nothing). */
  remove: string[];
  /** Set by a repair: the keys were removed. */
  repaired?: boolean;
}

export interface FsckOptions {
  /** Only objects whose key starts with this (manifests elsewhere are read as needed to judge them). */
  prefix?: string;
  repair?: boolean;
  /** Parallel requests (default 8). */
  concurrency?: number;
  /** Called as objects are verified: done and total objects, bytes hashed so far. */
  onProgress?: (p: { done: number; total: number; bytes: number }) => void;
}

export interface FsckReport {
  bucket: string;
  prefix: string;
  /** Objects under the prefix, and their bytes. */
  objects: number;
  bytes: number;
  /** Manifests read (in scope or owning an object in scope) and the entries verified against them. */
  manifests: number;
  listed: number;
  /** Objects unlisted by design that verified against their own checksum, per kind. */
  kept: Partial<Record<ObjectKind, number>>;
  findings: FsckFinding[];
  counts: Record<FsckProblem, number>;
  /** Keys removed by the repair. */
  removed: string[];
  /** No corrupt, missing or orphan object is left (`unlisted` is not damage). */
  clean: boolean;
  /** What applies to several findings (RERUN_NOTE when one asks for a new execution). */
  notes: string[];
}

// ---- the layout ---------------------------------------------------------------

interface Place {
  kind: ObjectKind;
  /** The manifest that lists it by design, if any. */
  owner?: string;
  /** For analysis objects: the result that marks the measure finished. */
  analysisResult?: string;
  /** For checkpoints: the run id. */
  runId?: string;
}

const RUN_OBJ = /^runs\/([^/]+)\/(final\/weights\.safetensors|metrics\.json|manifest\.json)$/;
const RUN_CKPT = /^runs\/([^/]+)\/checkpoints\/[^/]+$/;
const RUN_REWIND = /^runs\/([^/]+)\/rewind\/step-(0|[1-9][0-9]*)\.safetensors$/;
const LEVEL_OBJ =
  /^experiments\/([^/]+)\/level-(0|[1-9][0-9]*)\/(weights\.safetensors|mask\.safetensors|rewind\.safetensors|metrics\.json|manifest\.json)$/;
const REPORT = /^experiments\/([^/]+)\/report\/[^/]+$/;
const LOGITS = /^(logits\/[^/]+\/[^/]+\/[^/]+\/)(shard-(0|[1-9][0-9]*)\.bin|manifest\.json)$/;
const ANALYSIS = /^analysis\/([^/]+)\/(result\.json|arrays\.safetensors|progress\.safetensors)$/;
/** A level's training run id: `<lineage>-L<level>` (activities/lottery.ts). */
const LEVEL_RUN = /^(.+)-L(0|[1-9][0-9]*)$/;

const LEVEL_KIND: Record<string, ObjectKind> = {
  'weights.safetensors': 'level-weights',
  'mask.safetensors': 'level-mask',
  'rewind.safetensors': 'level-rewind',
  'metrics.json': 'level-metrics',
  'manifest.json': 'manifest',
};

function placeOf(key: string): Place {
  let m = RUN_OBJ.exec(key);
  if (m) {
    const owner = `runs/${m[1]}/manifest.json`;
    if (m[2] === 'manifest.json') return { kind: 'manifest' };
    return { kind: m[2] === 'metrics.json' ? 'run-metrics' : 'run-weights', owner };
  }
  m = RUN_CKPT.exec(key);
  if (m && parseCheckpointStep(key) !== null) return { kind: 'checkpoint', runId: m[1] as string };
  if (RUN_REWIND.test(key)) return { kind: 'rewind-state' };
  m = LEVEL_OBJ.exec(key);
  if (m) {
    const kind = LEVEL_KIND[m[3] as string] as ObjectKind;
    return kind === 'manifest'
      ? { kind }
      : { kind, owner: `experiments/${m[1]}/level-${m[2]}/manifest.json` };
  }
  if (REPORT.test(key)) return { kind: 'report' };
  m = LOGITS.exec(key);
  if (m)
    return m[2] === 'manifest.json'
      ? { kind: 'manifest' }
      : { kind: 'logit-shard', owner: `${m[1]}manifest.json` };
  m = ANALYSIS.exec(key);
  if (m) {
    const kind: ObjectKind =
      m[2] === 'result.json'
        ? 'analysis-result'
        : m[2] === 'arrays.safetensors'
          ? 'analysis-arrays'
          : 'analysis-progress';
    return { kind, analysisResult: `analysis/${m[1]}/result.json` };
  }
  return { kind: 'unknown' };
}

/** Manifests where the layout puts them; any other `manifest.json` is judged as an unknown object. */
function isManifestKey(key: string): boolean {
  return placeOf(key).kind === 'manifest';
}

/** The manifests that say a checkpoint's run is finished: its run's, and for a level's run its level's. */
function finishedRunManifests(runId: string): string[] {
  const out = [`runs/${runId}/manifest.json`];
  const m = LEVEL_RUN.exec(runId);
  if (m) out.push(`experiments/${m[1]}/level-${m[2]}/manifest.json`);
  return out;
}

/** What to do about a damaged object, by what recomputes it. */
function recomputeHint(key: string, manifest: string | undefined): string {
  const m = manifest ?? key;
  let x = /^experiments\/([^/]+)\/level-(\d+)\//.exec(m);
  if (x)
    return x[2] === '0'
      ? `start the lottery spec of lineage ${x[1]} again in a new execution: level 0 is published again from its dense run (trained again if that run is gone too)`
      : `start the lottery spec of lineage ${x[1]} again in a new execution: level ${x[2]} is trained again from level ${Number(x[2]) - 1}`;
  x = /^runs\/([^/]+)\//.exec(m);
  if (x)
    return `start the spec that trains run ${x[1]} again in a new execution (lth train, or the lottery spec whose dense run it is, then its teachers' precompute): the run is trained again`;
  if (m.startsWith('logits/'))
    return 'start the precompute (lth teachers precompute, or the distill spec) again in a new execution: damaged or missing shards are recomputed';
  return 'recompute it by starting the spec that produced it again in a new execution';
}

/** Why "a new execution", in the report's notes whenever a finding asks for one. */
export const RERUN_NOTE =
  'A new execution: lth attaches to a completed workflow of the same spec and returns its old result without ' +
  'looking at the store. Delete that execution first (temporal workflow delete --workflow-id <id>, or wait for the ' +
  "namespace's retention; deletion takes a few seconds), then start the same spec: the manifests' absence makes it redo those levels and runs, to " +
  'the same bytes. Another -e label also recomputes them, but metrics.json records the label, so those get other checksums.';

// ---- verification ---------------------------------------------------------------

/** What hashing an object found. */
type Checked =
  | { state: 'ok'; sha256: string; bytes: number }
  | { state: 'missing' }
  /** `recorded`: its checksum header ('(none recorded)' when absent), `actual`: its content's hash. */
  | { state: 'bad-header'; recorded: string; actual: string; bytes: number | null };

async function mapLimit<T>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

function short(sha: string): string {
  return /^[0-9a-f]{64}$/.test(sha) ? sha.slice(0, 12) : sha;
}

export async function fsck(store: ArtifactStore, opts: FsckOptions = {}): Promise<FsckReport> {
  const prefix = opts.prefix ?? '';
  const limit = Math.max(1, opts.concurrency ?? 8);
  const listing = await store.list(prefix);
  const inScope = new Map(listing.map((o) => [o.key, o]));
  const findings: FsckFinding[] = [];
  const kept: Partial<Record<ObjectKind, number>> = {};

  // Every object is hashed at most once.
  const checked = new Map<string, Promise<Checked>>();
  let done = 0;
  let hashedBytes = 0;
  const total = listing.length;
  const check = (key: string): Promise<Checked> => {
    let p = checked.get(key);
    if (!p) {
      p = (async (): Promise<Checked> => {
        try {
          const ref = await store.verify(key);
          hashedBytes += ref.bytes;
          return { state: 'ok', sha256: ref.sha256, bytes: ref.bytes };
        } catch (e) {
          if (e instanceof ArtifactNotFoundError) return { state: 'missing' };
          if (e instanceof IntegrityError) {
            const bytes = await store
              .stat(key)
              .then((s) => s.bytes)
              .catch(() => null);
            // A missing header makes stat throw too; the listing still has the size.
            const size = bytes ?? inScope.get(key)?.bytes ?? null;
            if (size !== null) hashedBytes += size;
            return { state: 'bad-header', recorded: e.expectedSha256, actual: e.actualSha256, bytes: size };
          }
          throw e;
        } finally {
          if (inScope.has(key)) {
            done++;
            opts.onProgress?.({ done, total, bytes: hashedBytes });
          }
        }
      })();
      checked.set(key, p);
    }
    return p;
  };

  // ---- manifests: those in scope, and those that own an object in scope ----
  const manifestKeys = new Set<string>();
  for (const { key } of listing) {
    if (isManifestKey(key)) manifestKeys.add(key);
    const owner = placeOf(key).owner;
    if (owner !== undefined) manifestKeys.add(owner);
  }
  /** Readable manifests, by key; absent keys are in `manifestState`. */
  const manifests = new Map<string, Manifest>();
  const manifestState = new Map<string, 'absent' | 'corrupt'>();
  await mapLimit([...manifestKeys].sort(), limit, async (key) => {
    if (!inScope.has(key) && !(await store.exists(key))) {
      manifestState.set(key, 'absent');
      return;
    }
    let detail: string | null = null;
    try {
      const { bytes } = await store.getBytes(key);
      const r = manifestSchema.safeParse(JSON.parse(bytes.toString('utf8')));
      if (!r.success) detail = `not a manifest: ${r.error.issues[0]?.message ?? 'invalid'}`;
      else {
        if (r.data.kind === 'teacher-logits') parseLogitManifest(r.data, key);
        const keys = new Set<string>();
        for (const e of r.data.entries) {
          if (keys.has(e.key)) throw new Error(`lists '${e.key}' twice`);
          keys.add(e.key);
        }
        manifests.set(key, r.data);
      }
    } catch (e) {
      if (e instanceof ArtifactNotFoundError) {
        manifestState.set(key, 'absent');
        return;
      }
      if (e instanceof IntegrityError)
        detail = `its content (sha256 ${short(e.actualSha256)}) does not match its own checksum ${short(e.expectedSha256)}: bit rot, truncation or a partial write`;
      else if (e instanceof SyntaxError) detail = `not valid JSON: ${e.message}`;
      else if (e instanceof Error && (e.name === 'ArtifactFormatError' || /lists '/.test(e.message)))
        detail = e.message;
      else throw e;
    }
    if (inScope.has(key)) done++;
    if (detail !== null) {
      manifestState.set(key, 'corrupt');
      findings.push({
        problem: 'corrupt',
        key,
        kind: 'manifest',
        detail: `manifest unreadable: ${detail}`,
        next: `fsck --repair removes it; then ${recomputeHint(key, key)}`,
        remove: [key],
      });
    }
  });

  // ---- entries: every entry of an in-scope manifest, and in-scope entries of the others ----
  const listedBy = new Map<string, string>();
  for (const [mkey, m] of manifests)
    for (const e of m.entries) if (inScope.has(mkey) || inScope.has(e.key)) listedBy.set(e.key, mkey);
  await mapLimit([...listedBy.keys()].sort(), limit, async (key) => {
    const mkey = listedBy.get(key) as string;
    const entry = (manifests.get(mkey) as Manifest).entries.find((e) => e.key === key);
    if (!entry) return;
    const c = await check(key);
    const kind = placeOf(key).kind;
    const hint = recomputeHint(key, mkey);
    if (c.state === 'missing') {
      findings.push({
        problem: 'missing',
        key,
        kind,
        listedBy: mkey,
        detail: `listed by ${mkey} (sha256 ${short(entry.sha256)}, ${entry.bytes} bytes) but not in the store`,
        next: `fsck --repair removes the manifest ${mkey}; then ${hint}`,
        remove: [mkey],
      });
      return;
    }
    const actual = c.state === 'ok' ? c.sha256 : c.actual;
    const bytes = c.bytes;
    const problems: string[] = [];
    if (actual !== entry.sha256)
      problems.push(
        c.state === 'ok'
          ? `other content under this key: sha256 ${short(actual)} matches the object's own checksum but not the manifest's ${short(entry.sha256)}`
          : `content sha256 ${short(actual)} differs from the manifest's ${short(entry.sha256)}` +
              (c.recorded === entry.sha256
                ? ' and from the checksum recorded with it (bit rot or truncation)'
                : ''),
      );
    if (bytes !== null && bytes !== entry.bytes)
      problems.push(`${bytes} bytes, the manifest lists ${entry.bytes}`);
    if (c.state === 'bad-header' && actual === entry.sha256)
      problems.push(`its checksum header (${short(c.recorded)}) is wrong, so every read refuses it`);
    if (problems.length === 0) return;
    findings.push({
      problem: 'corrupt',
      key,
      kind,
      listedBy: mkey,
      detail: problems.join('; '),
      next: `fsck --repair removes it and the manifest ${mkey}; then ${hint}`,
      remove: [key, mkey],
    });
  });

  // ---- everything else in scope ----
  const exists = async (key: string): Promise<boolean> => inScope.has(key) || store.exists(key);
  const rest = listing.filter((o) => !listedBy.has(o.key) && !manifestKeys.has(o.key));
  await mapLimit(rest, limit, async ({ key }) => {
    const place = placeOf(key);
    const add = (f: Omit<FsckFinding, 'key' | 'kind'>): void => {
      findings.push({ key, kind: place.kind, ...f });
    };
    // Provable garbage first: no need to hash what goes anyway.
    if (place.kind === 'checkpoint') {
      for (const m of finishedRunManifests(place.runId as string)) {
        if (await exists(m)) {
          add({
            problem: 'orphan',
            detail: `checkpoint of a finished run (${m} exists): the run deletes its checkpoints once published, this one was left behind (a killed worker)`,
            next: 'fsck --repair removes it',
            remove: [key],
          });
          done++;
          return;
        }
      }
    }
    if (place.kind === 'analysis-progress' && (await exists(place.analysisResult as string))) {
      add({
        problem: 'orphan',
        detail: `partial state of a finished measure (${place.analysisResult} exists), never read again`,
        next: 'fsck --repair removes it',
        remove: [key],
      });
      done++;
      return;
    }
    if (place.kind === 'logit-shard' && manifests.has(place.owner as string)) {
      add({
        problem: 'orphan',
        detail: `not a shard of the published set ${place.owner as string}, which lists every shard of its (content-addressed) set`,
        next: 'fsck --repair removes it',
        remove: [key],
      });
      done++;
      return;
    }

    const c = await check(key);
    if (c.state === 'missing') return; // deleted while we looked
    if (c.state === 'bad-header') {
      if (place.kind === 'unknown') {
        if (c.recorded === '(none recorded)') {
          add({
            problem: 'unlisted',
            detail: 'outside the layout lth writes and without a checksum header: not written by lth',
            next: 'nothing, if you put it there; fsck never removes it',
            remove: [],
          });
        } else {
          add({
            problem: 'corrupt',
            detail: `content sha256 ${short(c.actual)} differs from its own checksum ${short(c.recorded)}; outside the layout lth writes, so fsck does not remove it`,
            next: 'inspect it and remove it by hand',
            remove: [],
          });
        }
        return;
      }
      const what =
        c.recorded === '(none recorded)'
          ? 'it has no checksum header, so every read refuses it'
          : `content sha256 ${short(c.actual)} differs from its own checksum ${short(c.recorded)} (bit rot, truncation or a partial write): every read refuses it`;
      add({
        problem: 'corrupt',
        detail: what,
        next: `fsck --repair removes it; then ${afterRemoval(key, place)}`,
        remove: [key],
      });
      return;
    }
    const analysisDone = place.kind === 'analysis-arrays' && (await exists(place.analysisResult as string));
    const why = unlistedReason(key, place, manifestState, analysisDone);
    if (why === null) kept[place.kind] = (kept[place.kind] ?? 0) + 1;
    else add({ problem: 'unlisted', detail: why.detail, next: why.next, remove: [] });
  });

  findings.sort((a, b) =>
    a.problem !== b.problem
      ? ORDER[a.problem] - ORDER[b.problem]
      : a.key < b.key
        ? -1
        : a.key > b.key
          ? 1
          : 0,
  );

  const removed: string[] = [];
  if (opts.repair) {
    const targets = new Set<string>();
    for (const f of findings) for (const k of f.remove) targets.add(k);
    // Objects first, their manifests last: an interrupted repair leaves a manifest that still fails, not a
    // half-repaired set that looks complete.
    const ordered = [...targets].sort(
      (a, b) => Number(isManifestKey(a)) - Number(isManifestKey(b)) || (a < b ? -1 : 1),
    );
    for (const k of ordered) {
      await store.remove(k);
      removed.push(k);
    }
    for (const f of findings) if (f.remove.length > 0) f.repaired = true;
  }

  const counts: Record<FsckProblem, number> = { corrupt: 0, missing: 0, orphan: 0, unlisted: 0 };
  for (const f of findings) counts[f.problem]++;
  const clean = !findings.some((f) => f.problem !== 'unlisted' && !f.repaired);
  return {
    bucket: store.bucket,
    prefix,
    objects: listing.length,
    bytes: listing.reduce((s, o) => s + o.bytes, 0),
    manifests: manifests.size + [...manifestState.values()].filter((s) => s === 'corrupt').length,
    listed: listedBy.size,
    kept,
    findings,
    counts,
    removed,
    clean,
    notes: findings.some((f) => f.problem !== 'orphan' && / in a new execution/.test(f.next))
      ? [RERUN_NOTE]
      : [],
  };
}

const ORDER: Record<FsckProblem, number> = { corrupt: 0, missing: 1, orphan: 2, unlisted: 3 };

function afterRemoval(key: string, place: Place): string {
  switch (place.kind) {
    case 'checkpoint':
      return 'its run resumes from an older checkpoint or starts over (a resume skips a corrupt checkpoint anyway)';
    case 'rewind-state':
      return 'the next level 0 that needs it replays the dense run to that step (the same state)';
    case 'report':
      return 'run lth report for the experiment again';
    case 'analysis-result':
    case 'analysis-arrays':
    case 'analysis-progress':
      return 'run lth analyze again: the measure is recomputed';
    default:
      return recomputeHint(key, place.owner);
  }
}

/** Why an object nothing lists is there: null when by design (counted as kept), else an ambiguous finding. */
function unlistedReason(
  key: string,
  place: Place,
  manifestState: Map<string, 'absent' | 'corrupt'>,
  analysisDone: boolean,
): { detail: string; next: string } | null {
  switch (place.kind) {
    case 'checkpoint': // of a run without a manifest: running, cancelled or killed; the next start resumes from it
    case 'rewind-state': // a dense run's state at a rewind step: read when a lineage's level 0 starts
    case 'report': // written by lth report
    case 'analysis-result': // a finished measure
    case 'analysis-progress': // a running or interrupted measure's partial state
      return null;
    case 'analysis-arrays':
      return analysisDone
        ? null
        : {
            detail: `measure arrays without ${place.analysisResult as string}: the measure is being written, or its worker was killed between the two writes`,
            next: 'nothing while lth analyze runs; a rerun of the measure rewrites it. fsck never removes it',
          };
    case 'run-weights':
    case 'run-metrics':
    case 'level-weights':
    case 'level-mask':
    case 'level-rewind':
    case 'level-metrics':
    case 'logit-shard': {
      const owner = place.owner as string;
      const state = manifestState.get(owner);
      const whose = place.kind.startsWith('level')
        ? 'level'
        : place.kind === 'logit-shard'
          ? 'logit set'
          : 'run';
      if (state === 'corrupt')
        return {
          detail: `its ${whose}'s manifest ${owner} is unreadable (see corrupt), so nothing vouches for it`,
          next: `once that manifest is removed, ${recomputeHint(key, owner)}; it is rewritten`,
        };
      if (state === 'absent')
        return {
          detail: `its ${whose} has no manifest ${owner}: being computed or published, cancelled, or its publish was killed (a level writes its mask and rewind state before it trains)`,
          next: `nothing while it runs; otherwise ${recomputeHint(key, owner)}: it is rewritten and published. fsck never removes it`,
        };
      return {
        detail: `${owner} exists but does not list it`,
        next: 'inspect it; fsck never removes it',
      };
    }
    default:
      return {
        detail: `key outside the layout lth writes (${key.split('/')[0]}/...)`,
        next: 'nothing, if you put it there; fsck never removes it',
      };
  }
}
