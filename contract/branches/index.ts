// The registry of control branch kinds: one file each, one line here (open_lth's lottery/branch/registry.py).
// Schemas, labels, flags, lineage rules and level derivations are all read from the kinds themselves.
import { z } from 'zod';

import type { z as zod } from 'zod';

import type { PerLevelBranchKind, TrunkBranchKind } from './kind';
import { oneShot } from './one-shot';
import { randomPrune } from './random-prune';
import { reinit } from './reinit';
import { rewind } from './rewind';
import { twin } from './twin';

export const BRANCH_KINDS = [reinit, randomPrune, oneShot, rewind, twin] as const;

type Kinds = typeof BRANCH_KINDS;
type SchemaOf<K> = K extends { schema: infer S } ? S : never;
type SchemasOf<T extends readonly unknown[]> = { -readonly [I in keyof T]: SchemaOf<T[I]> };
type Schemas = SchemasOf<Kinds>;

/** Any branch a lottery spec can list, as the union of the kinds' schemas. */
export const branchSpecSchema = z.discriminatedUnion(
  'kind',
  BRANCH_KINDS.map((k) => k.schema) as unknown as Schemas,
);

export type BranchSpec = z.infer<typeof branchSpecSchema>;
export type BranchKindName = BranchSpec['kind'];

export const BRANCH_KIND_NAMES = BRANCH_KINDS.map((k) => k.kind) as BranchKindName[];

/** A registered kind, seen through any branch: `branchKind(b)` only ever hands `b` to its own kind. */
export type AnyBranchKind =
  PerLevelBranchKind<zod.ZodType<BranchSpec, unknown>> | TrunkBranchKind<zod.ZodType<BranchSpec, unknown>>;

/** The kind of a branch. */
export function branchKind(b: BranchSpec): AnyBranchKind {
  const kind = BRANCH_KINDS.find((k) => k.kind === b.kind);
  if (!kind) throw new Error(`internal: no branch kind '${b.kind}' in the registry`);
  return kind as unknown as AnyBranchKind;
}

/** A short readable name for a branch, used in workflow ids, reports and the UI. */
export function branchLabel(b: BranchSpec): string {
  return branchKind(b).label(b);
}

/** The id a trunk gives a branch's child workflow (and `lth branch` uses to find or start it). */
export function branchWorkflowId(trunkWorkflowId: string, b: BranchSpec): string {
  return `${trunkWorkflowId}.${branchLabel(b)}`;
}

/** The id of the IMP lineage a trunk-like branch (`runs: 'trunk'`) runs as its child workflow. */
export function branchTrunkWorkflowId(branchWorkflowId: string): string {
  return `${branchWorkflowId}.trunk`;
}

/** Whether a workflow id is such a branch's inner trunk. */
export function isBranchTrunkWorkflowId(workflowId: string): boolean {
  return workflowId.endsWith('.trunk');
}

/** How `--branch` values are written, for help texts. */
export const BRANCH_FLAG_HELP = BRANCH_KINDS.map((k) => k.flag.usage)
  .join(', ')
  .replace(/, ([^,]*)$/, ' or $1');

/** The raw branch a `--branch` value means, or null when no kind knows the value. */
export function branchFromFlag(value: string): unknown {
  for (const k of BRANCH_KINDS) {
    const raw = k.flag.parse(value);
    if (raw !== null) return raw;
  }
  return null;
}

export type { BranchKind, BranchLevelInputs, BranchOptions, LevelStart } from './kind';
