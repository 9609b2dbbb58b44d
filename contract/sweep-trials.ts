// A sweep's trials as runs: the base's kind (contract/spec-kinds), each trial's parsed spec and the workflow id
// its content hash gives (so a finished trial is found again, not rerun), and the checks that make a bad axis fail
// before anything starts. Used by the CLI (at the edge) and by the light activity that plans trials for the sweep
// workflow (which cannot hash in its sandbox).
import { specHash } from './ids';
import { recogniseSpecKind, SPEC_KINDS, specKindNamed } from './spec-kinds';
import { SpecError } from './spec';
import {
  fieldValue,
  trialAssignments,
  trialCount,
  trialLabel,
  withField,
  type PlannedTrial,
  type SweepSpec,
  type TrialsPage,
} from './sweep';

type Kind = (typeof SPEC_KINDS)[number];

/** `sweep-<name>-<hash>`: the same sweep spec attaches to its sweep. */
export function sweepWorkflowId(spec: SweepSpec): string {
  return `sweep-${spec.sweep}-${specHash(spec).slice(0, 16)}`;
}

function sweepError(lines: string[]): SpecError {
  return new SpecError(`invalid sweep spec:\n  ${lines.join('\n  ')}`, lines);
}

/** `sweep lenet-rewind-fraction: 18 lottery trials over rewind × pruning.fraction × train.seed, 3 at once`. */
export function describeSweep(spec: SweepSpec): string {
  const kind = sweepKind(spec);
  const how = spec.random ? `seeded random draws (seed ${spec.random.seed}) over` : 'over';
  return (
    `sweep ${spec.sweep}: ${trialCount(spec)} ${kind.kind} trials ${how} ` +
    `${spec.axes.map((a) => a.field).join(' × ')}, ${spec.maxParallel} at once`
  );
}

/** The base's kind: `kind:` when given, else the one its shape is. */
export function sweepKind(spec: SweepSpec): Kind {
  if (spec.kind !== undefined) {
    if (!SPEC_KINDS.some((k) => k.kind === spec.kind))
      throw sweepError([
        `kind: '${spec.kind}' is not a spec kind; known: ${SPEC_KINDS.map((k) => k.kind).join(', ')}`,
      ]);
    return specKindNamed(spec.kind);
  }
  const kind = recogniseSpecKind(spec.base);
  if (!kind)
    throw sweepError([
      `base: not a spec of any kind (${SPEC_KINDS.map((k) => k.kind).join(', ')}); set kind: to say which`,
    ]);
  return kind;
}

function parseTrial(kind: Kind, raw: Record<string, unknown>): unknown {
  return (kind.parse as (input: unknown) => unknown)(raw);
}

/** The base with the trial's values set, parsed as its kind (defaults filled in). */
export function trialSpec(spec: SweepSpec, kind: Kind, index: number): unknown {
  let raw = spec.base;
  for (const [field, value] of trialAssignments(spec, index)) raw = withField(raw, field, value);
  return parseTrial(kind, raw);
}

export function planTrial(spec: SweepSpec, kind: Kind, index: number): PlannedTrial {
  const assignments = trialAssignments(spec, index);
  const parsed = trialSpec(spec, kind, index);
  const k = kind as {
    workflowId(s: unknown): string;
    workflowArgs(s: unknown): unknown[];
    experiment(s: unknown): string;
  };
  return {
    index,
    summary: `trial ${index} of sweep ${spec.sweep} (${trialLabel(assignments)}): ${(kind.describe as (s: unknown) => string)(parsed)}`,
    label: trialLabel(assignments),
    assignments,
    kind: kind.kind,
    workflowType: kind.workflowType,
    workflowId: k.workflowId(parsed),
    workflowArgs: k.workflowArgs(parsed),
    experiment: k.experiment(parsed),
    runKind: kind.runKind,
  };
}

export function planTrials(spec: SweepSpec, from: number, count: number): TrialsPage {
  const kind = sweepKind(spec);
  const total = trialCount(spec);
  const trials: PlannedTrial[] = [];
  for (let i = from; i < Math.min(total, from + count); i++) trials.push(planTrial(spec, kind, i));
  return { total, trials };
}

/** Grids up to this size have every trial parsed before the sweep starts; larger ones, each axis value. */
const CHECK_ALL_UP_TO = 5_000;

/**
 * Everything that can be known wrong before a trial runs: the base is a valid spec of its kind; every axis names a
 * field that kind has (set alone on the base, it survives parsing); every value (grid) or bound (random) is valid
 * there; and, for grids up to CHECK_ALL_UP_TO trials, every combination. One SpecError names each bad field.
 */
export function validateSweep(spec: SweepSpec): Kind {
  const kind = sweepKind(spec);
  const lines: string[] = [];
  try {
    parseTrial(kind, spec.base);
  } catch (err) {
    if (!(err instanceof SpecError)) throw err;
    throw sweepError(err.issues.map((l) => `base.${l}`));
  }
  spec.axes.forEach((axis, i) => {
    const probes = axis.values ?? axis.uniform ?? axis.logUniform ?? axis.int ?? [];
    for (const value of probes) {
      try {
        const parsed = parseTrial(kind, withField(spec.base, axis.field, value));
        if (fieldValue(parsed, axis.field) === undefined) {
          lines.push(`axes[${i}].field: '${axis.field}' is not a field of a ${kind.kind} spec`);
          return;
        }
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        if (err.issues.some((l) => /unrecognized key/i.test(l))) {
          lines.push(`axes[${i}].field: '${axis.field}' is not a field of a ${kind.kind} spec`);
          return;
        }
        lines.push(`axes[${i}] (${axis.field} = ${JSON.stringify(value)}): ${err.issues.join('; ')}`);
      }
    }
  });
  if (lines.length > 0) throw sweepError(lines);
  const total = trialCount(spec);
  if (!spec.random && total <= CHECK_ALL_UP_TO) {
    for (let i = 0; i < total; i++) {
      try {
        trialSpec(spec, kind, i);
      } catch (err) {
        if (!(err instanceof SpecError)) throw err;
        lines.push(`trial ${i} (${trialLabel(trialAssignments(spec, i))}): ${err.issues.join('; ')}`);
        if (lines.length >= 10) break;
      }
    }
  }
  if (lines.length > 0) throw sweepError(lines);
  return kind;
}
