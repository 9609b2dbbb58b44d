// report/: the READMEs' result tables, each made from the bench result file it reports, so the figures in the
// READMEs are the ones the benches wrote (README.md and ml/README.md mark each block; report/readme-blocks.ts finds
// them and `npm run readme:tables` rewrites them). One pure function per table: parsed JSON in, Markdown out.
import {
  backendsResultSchema,
  distillResultSchema,
  fieldError,
  geometryResultSchema,
  impResultSchema,
  logitsResultSchema,
  parseBenchResult,
  peerResultSchema,
  profileResultSchema,
  scaleoutResultSchema,
  type GeometryLevel,
  type GeometryValue,
  type PeerRow,
} from './bench-results';
import {
  bold,
  formatPctMeanStd,
  formatRate,
  formatRatio,
  formatThousands,
  markdownTable,
} from './markdown-table';
import { formatAccuracyPct, formatRemainingPct } from './table';

export const RESULT_FILES = {
  imp: 'bench/results/imp-lenet-mnist.json',
  logits: 'bench/results/logits.json',
  distill: 'bench/results/distill.json',
  scaleout: 'bench/results/scaleout.json',
  backends: 'bench/results/backends.json',
  peer: 'bench/results/peer.json',
  profile: 'bench/results/profile-tensorflow.json',
  geometry: 'bench/results/geometry-lenet-mnist.json',
} as const;

const MODEL_LABELS: Record<string, string> = {
  'lenet-300-100': 'LeNet-300-100',
  'conv-2': 'Conv-2',
  'conv-4': 'Conv-4',
};
const modelLabel = (model: string) => MODEL_LABELS[model] ?? model;

const DATASET_LABELS: Record<string, string> = { mnist: 'MNIST', 'fashion-mnist': 'Fashion-MNIST' };
const DATASET_SHORT: Record<string, string> = { mnist: 'MNIST', 'fashion-mnist': 'F-MNIST' };

/** Items in the order their key first appears: the benches write rows in the order the README shows them. */
function firstSeen<T>(items: readonly T[], key: (t: T) => string): string[] {
  return [...new Set(items.map(key))];
}

/**
 * The levels the README shows: the dense network, then levels down to the sparsest, spaced to show where the
 * controls fall behind the ticket; all fifteen would bury that in rows.
 */
export const IMP_README_LEVELS: readonly number[] = [0, 3, 7, 10, 12, 14];

/** Final test accuracy (%) over seeds of the ticket and its controls at the chosen levels. */
export function impTable(json: unknown, levels: readonly number[] = IMP_README_LEVELS): string {
  const what = RESULT_FILES.imp;
  const result = parseBenchResult(impResultSchema, json, what);
  const rows = levels.map((level) => {
    const l = result.levels.find((x) => x.level === level);
    if (!l) throw fieldError(what, 'levels', `has no level ${level}, which the README shows`);
    const control = (s: typeof l.reinit) => (s && level > 0 ? formatPctMeanStd(s.mean, s.std) : '');
    // Level 0 is the trunk's dense run, shared by every control: its numbers stand once, in the ticket column.
    const remaining =
      level === 0 ? `${formatThousands(l.remainingPct)} (dense)` : formatRemainingPct(l.remainingPct);
    return [
      remaining,
      formatPctMeanStd(l.ticket.mean, l.ticket.std),
      control(l.reinit),
      control(l.randomPrune),
    ];
  });
  return markdownTable(['% weights remaining', 'ticket', 'random reinit', 'random pruning'], rows);
}

/** Each teacher's test accuracy from its stored logits, and precompute throughput per backend. */
export function teachersTable(json: unknown): string {
  const result = parseBenchResult(logitsResultSchema, json, RESULT_FILES.logits);
  const perSec = (t: (typeof result.teachers)[number], backend: string) => {
    const b = t.precomputeByBackend[backend];
    return b ? formatRate(b.perSec) : '';
  };
  const rows = result.teachers.map((t) => [
    `\`${t.name}\``,
    DATASET_LABELS[t.dataset] ?? t.dataset,
    `${formatAccuracyPct(t.testAccuracy)}%`,
    perSec(t, 'tensorflow'),
    perSec(t, 'wasm'),
    perSec(t, 'cpu'),
  ]);
  return markdownTable(
    [
      'teacher',
      'dataset',
      'test accuracy (from stored logits)',
      'precompute, native (samples/s)',
      'WASM',
      'cpu (pure JS)',
    ],
    rows,
  );
}

/** A KL divergence in nats: two significant digits, exponent form once the leading digit is past the second decimal. */
function formatKl(kl: number): string {
  if (kl === 0) return '0';
  return kl < 0.01 ? kl.toExponential(1) : kl.toPrecision(2);
}

/** `cnn-teacher-mnist` -> `cnn`: the header says which teacher each ` / `-separated figure is. */
const teacherShort = (name: string) => name.replace(/-teacher(-.*)?$/, '');

/** Bytes per sample of each stored format and how far it is from the full distribution, per teacher. */
export function logitFormatsTable(json: unknown): string {
  const result = parseBenchResult(logitsResultSchema, json, RESULT_FILES.logits);
  const teachers = firstSeen(result.formats, (f) => f.teacher);
  const formats = firstSeen(result.formats, (f) => f.format);
  const rowsOf = (format: string) => result.formats.filter((f) => f.format === format);
  const bytes = (format: string) => Math.max(...rowsOf(format).map((f) => f.bytesPerSample));
  // Largest first: the table reads as what each step down in bytes costs in fidelity.
  formats.sort((a, b) => bytes(b) - bytes(a) || a.localeCompare(b));
  const float32 = result.formats.find((f) => f.format === 'float32');
  const classes = float32 ? ` (${float32.bytesPerSample / 4} classes)` : '';
  const rows = formats.map((format) => {
    const byTeacher = teachers.map((t) => rowsOf(format).find((f) => f.teacher === t));
    return [
      format,
      firstSeen(rowsOf(format), (f) => formatThousands(f.bytesPerSample)).join(' / '),
      byTeacher.map((f) => (f ? formatKl(f.klToFull) : '-')).join(' / '),
    ];
  });
  return markdownTable(
    [
      'format',
      `bytes per sample${classes}`,
      `mean KL to the full distribution (${teachers.map(teacherShort).join(' / ')}, nats)`,
    ],
    rows,
  );
}

/** The README's words for each distillation variant of bench/distill.ts, in the order it lists them. */
export const DISTILL_VARIANT_LABELS: ReadonlyMap<string, string> = new Map([
  ['student', 'student (no KD)'],
  ['cnn', 'cnn (one token)'],
  ['involution', 'involution (one token)'],
  ['both-tokens', 'both-tokens (LIB-KD: a token per teacher)'],
  ['both-average', 'both-average (one token, mean target)'],
  ['deit-hard', "deit-hard (CNN teacher's argmax)"],
  ['cnn-features', 'cnn-features (cnn token + its 7×7×64 map)'],
]);

/**
 * Final test accuracy (%) per variant (rows) and setting (columns: dataset, share of the training split, epochs),
 * mean ± std over seeds; the best mean of each column in bold.
 */
export function distillTable(json: unknown): string {
  const result = parseBenchResult(distillResultSchema, json, RESULT_FILES.distill);
  const settingKey = (r: { dataset: string; trainFraction: number }) => `${r.dataset}@${r.trainFraction}`;
  const settings = firstSeen(
    [...result.runs].sort((a, b) => a.dataset.localeCompare(b.dataset) || a.trainFraction - b.trainFraction),
    settingKey,
  );
  const known = [...DISTILL_VARIANT_LABELS.keys()];
  const variants = firstSeen(result.runs, (r) => r.variant).sort((a, b) => {
    const ia = known.indexOf(a);
    const ib = known.indexOf(b);
    if (ia >= 0 && ib >= 0) return ia - ib;
    if (ia >= 0 || ib >= 0) return ia >= 0 ? -1 : 1;
    return a.localeCompare(b);
  });
  const header = settings.map((s) => {
    const runs = result.runs.filter((r) => settingKey(r) === s);
    const first = runs[0] as (typeof runs)[number];
    const share = first.trainFraction === 1 ? 'full' : `${Math.round(first.trainFraction * 1000) / 10}%`;
    const epochs = firstSeen(runs, (r) => String(r.epochs)).join('/');
    return `${DATASET_SHORT[first.dataset] ?? first.dataset} ${share}, ${epochs} ep`;
  });
  const best = settings.map((s) =>
    Math.max(...result.runs.filter((r) => settingKey(r) === s).map((r) => r.testAccuracy.mean)),
  );
  const rows = variants.map((variant) => [
    DISTILL_VARIANT_LABELS.get(variant) ?? variant,
    ...settings.map((s, c) => {
      const run = result.runs.find((r) => r.variant === variant && settingKey(r) === s);
      if (!run) return '';
      const cell = formatPctMeanStd(run.testAccuracy.mean, run.testAccuracy.std);
      return run.testAccuracy.mean === best[c] ? bold(cell) : cell;
    }),
  ]);
  return markdownTable(['variant', ...header], rows);
}

/** One sweep on 1, 2, 4 workers per profile: wall time, speedup (the best with several workers in bold), overhead. */
export function scaleoutTable(json: unknown): string {
  const result = parseBenchResult(scaleoutResultSchema, json, RESULT_FILES.scaleout);
  const bestSpeedup = new Map<string, number>();
  for (const r of result.runs)
    if (r.workers > 1) bestSpeedup.set(r.profile, Math.max(bestSpeedup.get(r.profile) ?? 0, r.speedup));
  const rows = result.runs.map((r) => {
    const speedup = r.speedup.toFixed(2);
    return [
      r.profile,
      String(r.workers),
      r.wallSeconds.toFixed(1),
      r.workers > 1 && r.speedup === bestSpeedup.get(r.profile) ? bold(speedup) : speedup,
      `${formatThousands(r.scheduleToStartP50Ms)} / ${formatThousands(r.scheduleToStartP95Ms)}`,
      `${(r.overheadShare * 100).toFixed(1)}%`,
    ];
  });
  return markdownTable(
    ['profile', 'workers', 'wall (s)', 'speedup', 'schedule-to-start p50 / p95 (ms)', 'overhead'],
    rows,
  );
}

/** The backends table names the student as such: it is the one model there that is not a pruning subject. */
const BACKENDS_MODEL_LABELS: Record<string, string> = { 'vit-tiny': 'vit-tiny (student)' };

/** Training samples/s per model on each backend (native at 1 and 2 threads); a smaller batch is noted in its cell. */
export function backendsTable(json: unknown): string {
  const result = parseBenchResult(backendsResultSchema, json, RESULT_FILES.backends);
  const cell = (model: string, backend: string, threads: number | null) => {
    const r = result.results.find(
      (x) => x.model === model && x.backend === backend && (threads === null || x.threads === threads),
    );
    if (!r) return '';
    return formatRate(r.samplesPerSec) + (r.batch !== 128 ? ` (batch ${r.batch})` : '');
  };
  const rows = firstSeen(result.results, (r) => r.model).map((model) => [
    BACKENDS_MODEL_LABELS[model] ?? modelLabel(model),
    cell(model, 'tensorflow', 1),
    cell(model, 'tensorflow', 2),
    cell(model, 'wasm', 1),
    cell(model, 'cpu', null),
  ]);
  return markdownTable(['model', 'native TensorFlow, 1 thread', 'native, 2 threads', 'WASM', 'CPU'], rows);
}

/** The fastest row (fewest threads on a tie): "each side at its best thread count". */
function fastest(rows: readonly PeerRow[]): PeerRow | undefined {
  return rows.reduce<PeerRow | undefined>(
    (a, r) =>
      !a ||
      r.samplesPerSec > a.samplesPerSec ||
      (r.samplesPerSec === a.samplesPerSec && r.threads < a.threads)
        ? r
        : a,
    undefined,
  );
}

/**
 * lth on native TensorFlow against PyTorch, both from the last invocation of bench:peer only (the machine moves
 * between invocations, so mixing them would compare machines): each at its best thread count, both at one thread,
 * peak memory, and lth through the tape.
 */
export function peerTable(json: unknown): string {
  const what = RESULT_FILES.peer;
  const result = parseBenchResult(peerResultSchema, json, what);
  const invocation = (result.invocations[result.invocations.length - 1] as { startedAt: string }).startedAt;
  const measured = (rows: readonly PeerRow[], framework: string) =>
    rows.filter((r) => r.invocation === invocation && r.framework === framework);
  const lth = measured(result.results, 'lth-native');
  const torch = measured(result.results, 'pytorch');
  const tape = measured(result.baselines, 'lth-native-tape');
  const models = firstSeen(lth, (r) => r.model).filter((m) => torch.some((r) => r.model === m));
  if (models.length === 0)
    throw fieldError(
      what,
      'results',
      `no model has both lth-native and pytorch rows of invocation ${invocation}`,
    );
  const version = /torch (\d+\.\d+)/.exec(torch[0]?.version ?? '')?.[1];
  const torchName = version ? `PyTorch ${version}` : 'PyTorch';

  const rows = models.map((model) => {
    const ours = lth.filter((r) => r.model === model).sort((a, b) => a.threads - b.threads);
    const theirs = torch.filter((r) => r.model === model);
    const [oursBest, theirsBest] = [fastest(ours), fastest(theirs)] as [PeerRow, PeerRow];
    const ours1 = ours.find((r) => r.threads === 1);
    const theirs1 = theirs.find((r) => r.threads === 1);
    const tape1 = tape.find((r) => r.model === model && r.threads === 1);
    return [
      modelLabel(model),
      firstSeen(
        ours.filter((r) => r.engine !== undefined),
        (r) => r.engine as string,
      ).join(' / '),
      formatRate(oursBest.samplesPerSec),
      formatRate(theirsBest.samplesPerSec),
      formatRatio(oursBest.samplesPerSec / theirsBest.samplesPerSec),
      ours1 && theirs1
        ? `${formatRate(ours1.samplesPerSec)} / ${formatRate(theirs1.samplesPerSec)} = ${formatRatio(ours1.samplesPerSec / theirs1.samplesPerSec)}`
        : '',
      ours1 && theirs1 ? `${formatThousands(ours1.peakRssMiB)} / ${formatThousands(theirs1.peakRssMiB)}` : '',
      tape1 ? formatRate(tape1.samplesPerSec) : '',
    ];
  });
  return markdownTable(
    [
      'model',
      'engine',
      'lth native (best)',
      `${torchName} (best)`,
      'ratio',
      'at 1 thread: lth / PyTorch',
      'peak RSS MiB, lth / PyTorch (1 thread)',
      'lth through the tape (1 thread)',
    ],
    rows,
  );
}

/**
 * Milliseconds as ml/README.md writes them: one decimal below 10 ms, whole (grouped) from there, since a step's
 * figures move by ±10% between runs and a tenth of a millisecond only says something about the smallest ones.
 * The threshold is taken on the value rounded to tenths, so 9.96 reads 10, not 10.0; the whole number is rounded
 * from the value itself (123.46 -> 123, where rounding the tenths again would give 124).
 */
function formatMs(ms: number): string {
  return Math.abs(Math.round(ms * 10) / 10) < 10 ? ms.toFixed(1) : formatThousands(ms);
}

/**
 * The share of a step outside its kernels as a whole percentage. A negative share (kernels timed one by one,
 * synchronously, summing to more than the step) is not a time anything took, so it is set apart in parentheses,
 * with a true minus sign: (−15%).
 */
function formatOutsideShare(share: number): string {
  const pct = Math.round(Math.abs(share) * 100);
  return share < 0 && pct > 0 ? `(−${pct}%)` : `${pct}%`;
}

/**
 * What tfjs's profiler names a call that is not a registered kernel: a tf.customGrad op (ml/ops/transformer.ts's
 * LayerNorm and GELU, for one), timed with the kernels it runs inside it. It names no kernel a reader could look
 * for, so the largest-kernels cell passes over it.
 */
const UNNAMED_SCOPE = 'unnamed scope';

/** `Conv2D ×2 107`: the call count only where there is more than one call. */
function kernelCell(k: { name: string; count: number; ms: number }): string {
  return `${k.name}${k.count > 1 ? ` ×${formatThousands(k.count)}` : ''} ${formatMs(k.ms)}`;
}

/** How many kernels the largest-kernels cell names: the three that make up most of every model's kernel time. */
const PROFILE_TOP_KERNELS = 3;

/**
 * One training step per model on the profiled backend: its wall time on the tape and as a graph, kernel calls
 * (the outermost, which the time sums, in parentheses), time in and outside the kernels, tensors made, and the
 * kernels with the most time.
 */
export function profileTable(json: unknown): string {
  const result = parseBenchResult(profileResultSchema, json, RESULT_FILES.profile);
  const rows = result.models.map((m) => [
    m.model,
    formatMs(m.wallMs),
    m.graphWallMs === null ? '-' : formatMs(m.graphWallMs),
    `${formatThousands(m.kernels)} (${formatThousands(m.outermostKernels)})`,
    `${formatMs(m.kernelMs)} ms`,
    formatOutsideShare(m.outsideShare),
    formatThousands(m.tensorsAllocated),
    // Sorted here too (most time first, then by name), so a result file in another order makes the same cell.
    [...m.topKernels]
      .filter((k) => k.name !== UNNAMED_SCOPE)
      .sort((a, b) => b.ms - a.ms || a.name.localeCompare(b.name))
      .slice(0, PROFILE_TOP_KERNELS)
      .map(kernelCell)
      .join(', '),
  ]);
  return markdownTable(
    [
      'model',
      'tape step (ms)',
      'graph step (ms)',
      'kernel calls (outermost)',
      'in kernels',
      'outside kernels',
      'tensors made',
      'largest kernels (ms)',
    ],
    rows,
  );
}

/**
 * The % remaining the geometry table shows besides the dense network: about every second level of 20% pruning
 * down to the sparsest bench:geometry measures, enough to see a trend without a row per level.
 */
export const GEOMETRY_README_REMAINING_PCT: readonly number[] = [80, 51, 33, 21, 11, 7, 4.4];

/**
 * How far (relative) a level's % remaining may be from a target to stand for it. Levels of 20% pruning lie 20-25%
 * apart, so 10% takes the level meant and never its neighbour, and a shorter run (fewer levels) gets no row that
 * only claims to be the target.
 */
const GEOMETRY_LEVEL_TOLERANCE = 0.1;

/** The series of bench/geometry.ts, by the name its result gives them. */
const TICKET = 'ticket';
const REINIT = 'reinit';
const RANDOM = 'random-prune';
const ONE_SHOT = 'one-shot';

/**
 * How a value is written: `scale` multiplies it (fractions of the test set become percentage points), `decimals`
 * says how many digits follow the point given the mean and the spread written beside it, so both end at the same
 * place and the spread reads against the mean's last digit.
 */
interface GeometryUnit {
  scale: number;
  decimals: (mean: number, spread: number | null) => number;
}

/**
 * Three significant digits of the mean (of the spread where the mean is 0): curvature and σ move by more than 1%
 * between seeds and replicates, so a fourth digit would be noise. Negative decimals round left of the point.
 */
const SIGNIFICANT_3: GeometryUnit = {
  scale: 1,
  decimals: (mean, spread) => {
    const lead = mean !== 0 ? mean : (spread ?? 0);
    if (lead === 0) return 0;
    // From the rounded value, so 9.996 (10.0 at three digits) takes one decimal, not two.
    return 2 - Math.floor(Math.log10(Math.abs(Number(lead.toPrecision(3)))));
  },
};

/** Fractions of the test set as percentage points with two decimals: 0.0125 -> 1.25 (a test set of 10,000 has 0.01). */
const PERCENTAGE_POINTS: GeometryUnit = { scale: 100, decimals: () => 2 };

/** `x` at `decimals` digits after the point (rounded left of it when negative), without a sign on a zero. */
function formatAtDecimals(x: number, decimals: number): string {
  const text =
    decimals >= 0 ? x.toFixed(decimals) : formatThousands(Math.round(x / 10 ** -decimals) * 10 ** -decimals);
  return /^-[0.,]*$/.test(text) ? text.slice(1) : text;
}

interface GeometryColumn {
  header: string;
  key: Exclude<keyof GeometryLevel, 'level' | 'remainingPct'>;
  /** The series whose values the cell holds, ` / `-separated in this order (the header names them). */
  series: readonly string[];
  unit: GeometryUnit;
}

const GEOMETRY_COLUMNS: readonly GeometryColumn[] = [
  {
    header: 'λmax ticket / reinit / random / one-shot',
    key: 'topEigenvalue',
    series: [TICKET, REINIT, RANDOM, ONE_SHOT],
    unit: SIGNIFICANT_3,
  },
  { header: 'trace ticket / reinit', key: 'trace', series: [TICKET, REINIT], unit: SIGNIFICANT_3 },
  {
    header: 'PAC-Bayes σ ticket / reinit / random',
    key: 'pacBayesSigma',
    series: [TICKET, REINIT, RANDOM],
    unit: SIGNIFICANT_3,
  },
  {
    header: 'L-1→L barrier (test error, pt) ticket / random',
    key: 'barrierPrevLevel',
    series: [TICKET, RANDOM],
    unit: PERCENTAGE_POINTS,
  },
  {
    header: 'rewind→L barrier interpolated (pt) ticket',
    key: 'barrierRewindInterpolated',
    series: [TICKET],
    unit: PERCENTAGE_POINTS,
  },
  { header: 'twin barrier (pt)', key: 'barrierTwin', series: [TICKET], unit: PERCENTAGE_POINTS },
  {
    header: 'test error ticket / reinit / random / one-shot (%)',
    key: 'testError',
    series: [TICKET, REINIT, RANDOM, ONE_SHOT],
    unit: PERCENTAGE_POINTS,
  },
];

/** `0, 1, 2` */
const seedList = (seeds: readonly number[]) => seeds.join(', ');

/**
 * The levels of `levels` the geometry table shows: level 0 (the dense network) and, per target % remaining, the
 * level nearest to it (by ratio, as the levels are spaced) when within the tolerance; each once, in level order.
 */
function geometryRowLevels(levels: readonly GeometryLevel[], targets: readonly number[]): GeometryLevel[] {
  const chosen = new Set<GeometryLevel>(levels.filter((l) => l.level === 0));
  const pruned = levels.filter((l) => l.level > 0 && l.remainingPct !== null);
  for (const target of targets) {
    const distance = (l: GeometryLevel) => Math.abs(Math.log((l.remainingPct as number) / target));
    const nearest = pruned.reduce<GeometryLevel | undefined>(
      (best, l) => (!best || distance(l) < distance(best) ? l : best),
      undefined,
    );
    if (nearest && distance(nearest) <= Math.log(1 + GEOMETRY_LEVEL_TOLERANCE)) chosen.add(nearest);
  }
  return [...chosen].sort((a, b) => a.level - b.level);
}

/**
 * The λmax, trace, PAC-Bayes σ, barriers and test error of the ticket and its controls at a few levels, from the
 * per-seed result of bench/geometry.ts, with a caption line above the table saying over what ± is taken. With
 * several seeds a value is mean ± std over them; a value only one seed has carries that seed's spread over its
 * replicates (data subsets × probe seeds) as `(±x r)`, a different quantity, so it is marked and never written as
 * a ± over seeds. Level 0, the dense network every series starts from, stands once, in the ticket's place.
 */
export function geometryTable(
  json: unknown,
  targets: readonly number[] = GEOMETRY_README_REMAINING_PCT,
): string {
  const what = RESULT_FILES.geometry;
  const result = parseBenchResult(geometryResultSchema, json, what);
  const ticket = result.series.find((s) => s.name === TICKET);
  if (!ticket) throw fieldError(what, 'series', `has no '${TICKET}' series, which the table's rows follow`);
  const manySeeds = result.seeds.length > 1;
  // What the cells actually hold, for the caption to explain exactly that.
  const seen = { replicate: false, lone: false, fewer: false };

  const valueText = (v: GeometryValue, unit: GeometryUnit): string => {
    if (v.mean === null) return '';
    const f = (x: number, spread: number | null) =>
      formatAtDecimals(x * unit.scale, unit.decimals((v.mean as number) * unit.scale, spread));
    if (v.n >= 2 && v.std !== null) {
      if (v.n < result.seeds.length) seen.fewer = true;
      return `${f(v.mean, v.std * unit.scale)} ± ${f(v.std, v.std * unit.scale)}`;
    }
    // One seed: its replicates' std, where the measure has replicates (curvature and flatness; not barriers).
    const at = v.perSeed.findIndex((x) => x !== null);
    const r = at >= 0 ? (v.replicateStd[at] ?? null) : null;
    if (r === null) {
      if (manySeeds) seen.lone = true;
      return f(v.mean, null);
    }
    seen.replicate = true;
    return `${f(v.mean, r * unit.scale)} (±${f(r, r * unit.scale)} r)`;
  };

  const rows = geometryRowLevels(ticket.levels, targets).map((l) => {
    const dense = l.level === 0;
    // Dense is 100% by definition; the bench writes null only for a level no seed file holds.
    const remaining = dense
      ? `${formatRemainingPct(l.remainingPct ?? 100)} (dense)`
      : formatRemainingPct(l.remainingPct as number);
    const cells = GEOMETRY_COLUMNS.map((c) => {
      const slots = (dense ? [TICKET] : c.series).map((name) => {
        const level = result.series.find((s) => s.name === name)?.levels.find((x) => x.level === l.level);
        return level ? valueText(level[c.key], c.unit) : '';
      });
      // A missing value leaves its slot empty (`a / / c`); a cell with none at all is empty.
      return slots.every((t) => t === '') ? '' : slots.join(' / ').replace(/ {2,}/g, ' ').trim();
    });
    return [remaining, ...cells];
  });

  const { seeds: replicateSeeds, subsets } = result.spec.analysis.replicates;
  const replicates = `${subsets} data subset${subsets === 1 ? '' : 's'} × ${replicateSeeds} probe seed${replicateSeeds === 1 ? '' : 's'}`;
  const planned = result.seedsPlanned.some((s) => !result.seeds.includes(s))
    ? ` of the planned ${seedList(result.seedsPlanned)}`
    : '';
  // Only what some cell holds is explained, so the caption never describes a mark the table does not use.
  const oneSeed = [seen.replicate ? 'marked (±x r)' : '', seen.lone ? 'without ±' : '']
    .filter((t) => t !== '')
    .join(' or ');
  const onReplicates = `± r is the std over its ${replicates}`;
  const caption = manySeeds
    ? [
        `Mean ± std over ${result.seeds.length} IMP seeds (${seedList(result.seeds)}${planned}).`,
        seen.fewer ? 'A value some seed lacks is over the seeds that have it.' : '',
        oneSeed ? `A value ${oneSeed} is one seed's alone${seen.replicate ? `; ${onReplicates}` : ''}.` : '',
      ]
    : [
        `One IMP seed (seed ${result.seeds[0]}${planned})` +
          (seen.replicate
            ? `: ${onReplicates}; a value without it is measured once.`
            : ', each value measured once.'),
      ];
  const note = 'Level 0, the dense network, is shared by every series and stands once.';
  const header = ['% remaining', ...GEOMETRY_COLUMNS.map((c) => c.header)];
  return `${[...caption, note].filter((t) => t !== '').join(' ')}\n\n${markdownTable(header, rows)}`;
}

export interface ReadmeTable {
  /** The bench result file the table is made from, relative to the repository root. */
  source: string;
  render: (json: unknown) => string;
}

/**
 * The geometry table, ready for README_TABLES as `geometry`. Not registered yet: the committed result file is of the
 * older format (the table would fail on it) and README.md has no `table:geometry` block, which the CLI and the test
 * of README.md count as a table the README lost. Registered in the same change that adds the block, after
 * `npm run bench:geometry` has rewritten the result.
 */
export const GEOMETRY_README_TABLE: ReadmeTable = {
  source: RESULT_FILES.geometry,
  render: (json) => geometryTable(json),
};

/** Every generated table of README.md, by the name its `<!-- table:NAME ... -->` marker carries. */
export const README_TABLES: Readonly<Record<string, ReadmeTable>> = {
  imp: { source: RESULT_FILES.imp, render: (json) => impTable(json) },
  teachers: { source: RESULT_FILES.logits, render: teachersTable },
  'logit-formats': { source: RESULT_FILES.logits, render: logitFormatsTable },
  distill: { source: RESULT_FILES.distill, render: distillTable },
  scaleout: { source: RESULT_FILES.scaleout, render: scaleoutTable },
  backends: { source: RESULT_FILES.backends, render: backendsTable },
  peer: { source: RESULT_FILES.peer, render: peerTable },
  geometry: GEOMETRY_README_TABLE,
};

/** Every generated table of ml/README.md (the engine's own notes), by marker name. */
export const ML_README_TABLES: Readonly<Record<string, ReadmeTable>> = {
  profile: { source: RESULT_FILES.profile, render: profileTable },
};

export interface GeneratedFile {
  /** The Markdown file, relative to the repository root. */
  file: string;
  /** Its tables by marker name: names are per file, so each file's blocks are checked against its own set. */
  tables: Readonly<Record<string, ReadmeTable>>;
}

/** Every Markdown file with generated tables: `npm run readme:tables` rewrites or checks each of them. */
export const GENERATED_FILES: readonly GeneratedFile[] = [
  { file: 'README.md', tables: README_TABLES },
  { file: 'ml/README.md', tables: ML_README_TABLES },
];
