// What a scheduled run starts: the schedule's spec (a sweep, or a spec of any kind) with its labels stamped with
// the time the run was scheduled for, as the workflow of its kind under the id that spec's hash gives. Checked
// when the schedule is created (validateScheduledSpec), planned at each run by a light activity (planScheduledRun).
import { MAX_STAMPED_LABEL, stampedName, type PlannedRun } from './schedule';
import { recogniseSpecKind, SPEC_KINDS } from './spec-kinds';
import { specError, SpecError } from './spec';
import { parseSweepSpec, type SweepSpec } from './sweep';
import { describeSweep, sweepKind, sweepWorkflowId, validateSweep } from './sweep-trials';

type Kind = (typeof SPEC_KINDS)[number];
type AnyKind = {
  [K in keyof Kind]: Kind[K] extends (...a: never[]) => infer R ? (...a: unknown[]) => R : Kind[K];
};

function isSweep(raw: Record<string, unknown>): boolean {
  return 'axes' in raw && 'base' in raw;
}

function kindOf(raw: Record<string, unknown>): AnyKind {
  const kind = recogniseSpecKind(raw);
  if (!kind)
    throw new SpecError(
      `a scheduled spec must be a sweep or a spec of one kind (${SPEC_KINDS.map((k) => k.kind).join(', ')})`,
      ['(root): not a sweep or a spec of any kind'],
    );
  return kind as unknown as AnyKind;
}

/** The spec is valid and its labels leave room for the stamp; returns what it is, for messages. */
export function validateScheduledSpec(raw: Record<string, unknown>): { kind: string; label: string } {
  if (isSweep(raw)) {
    const spec = parseSweepSpec(raw);
    const kind = validateSweep(spec) as unknown as AnyKind;
    const experiment = kind.experiment(kind.parse(spec.base)) as string;
    for (const [field, label] of [
      ['sweep', spec.sweep],
      ['base.experiment', experiment],
    ] as const) {
      if (label.length > MAX_STAMPED_LABEL)
        throw specError(
          'scheduled sweep',
          field,
          `at most ${MAX_STAMPED_LABEL} characters (each run appends -YYYYMMDDTHHMMSSZ)`,
        );
    }
    return { kind: 'sweep', label: spec.sweep };
  }
  const kind = kindOf(raw);
  const label = kind.experiment(kind.parse(raw)) as string;
  if (label.length > MAX_STAMPED_LABEL)
    throw specError(
      `scheduled ${kind.kind} spec`,
      'experiment',
      `at most ${MAX_STAMPED_LABEL} characters (each run appends -YYYYMMDDTHHMMSSZ)`,
    );
  return { kind: kind.kind, label };
}

/** The run of the schedule's spec scheduled for `at`: its labels stamped, its kind's workflow and id. */
export function planScheduledRun(raw: Record<string, unknown>, at: Date): PlannedRun {
  if (isSweep(raw)) {
    const original = parseSweepSpec(raw);
    const kind = sweepKind(original) as unknown as AnyKind;
    const base = kind.parse(original.base) as { experiment: string };
    const spec: SweepSpec = parseSweepSpec({
      ...raw,
      sweep: stampedName(original.sweep, at),
      base: { ...original.base, experiment: stampedName(base.experiment, at) },
    });
    return {
      kind: 'sweep',
      summary: `scheduled run for ${at.toISOString()}: ${describeSweep(spec)}`,
      workflowType: 'sweepWorkflow',
      workflowId: sweepWorkflowId(spec),
      workflowArgs: [{ spec }],
      experiment: stampedName(base.experiment, at),
      runKind: 'sweep',
      sweep: spec.sweep,
    };
  }
  const kind = kindOf(raw);
  const first = kind.parse(raw) as { experiment: string };
  const spec = kind.parse({ ...raw, experiment: stampedName(first.experiment, at) });
  return {
    kind: kind.kind,
    summary: `scheduled run for ${at.toISOString()}: ${kind.describe(spec) as string}`,
    workflowType: kind.workflowType,
    workflowId: kind.workflowId(spec) as string,
    workflowArgs: kind.workflowArgs(spec) as unknown[],
    experiment: kind.experiment(spec) as string,
    runKind: kind.runKind,
  };
}
