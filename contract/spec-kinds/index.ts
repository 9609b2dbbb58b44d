// The registry of spec kinds: one file each, one line here.
import { distillKind } from './distill';
import type { SpecKind } from './kind';
import { lotteryKind } from './lottery';
import { precomputeKind } from './precompute';
import { trainKind } from './train';

export const SPEC_KINDS = [trainKind, lotteryKind, precomputeKind, distillKind] as const;

/** The kind a spec file's object is, from its shape; null when it is none of them. */
export function recogniseSpecKind(raw: Record<string, unknown>): (typeof SPEC_KINDS)[number] | null {
  return SPEC_KINDS.find((k) => k.recognises(raw)) ?? null;
}

/** The kind registered under a name (a sweep's trials carry it). */
export function specKindNamed(name: string): (typeof SPEC_KINDS)[number] {
  const kind = SPEC_KINDS.find((k) => k.kind === name);
  if (!kind)
    throw new Error(`unknown spec kind '${name}'; known: ${SPEC_KINDS.map((k) => k.kind).join(', ')}`);
  return kind;
}

export { distillKind, lotteryKind, precomputeKind, trainKind, type SpecKind };
export { validateLotterySpec } from './lottery';
