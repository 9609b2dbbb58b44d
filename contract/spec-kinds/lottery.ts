import { getModel } from '../../ml/models';
import { lotteryWorkflowId } from '../ids';
import {
  parseLotterySpec,
  resolvePruning,
  type LevelResult,
  type LotteryResult,
  type LotterySpec,
} from '../lottery';
import { branchLabel } from '../branches';
import { rewindName } from '../rewind';
import type { SpecKind } from './kind';
import { describeTraining } from './train';

/**
 * Parses a lottery spec and checks what the schema cannot: that every layer it names (pruning.exclude,
 * pruning.fractions) is a prunable weight of its model. Throws SpecError with one line per offending field.
 */
export function validateLotterySpec(input: unknown): LotterySpec {
  const spec = parseLotterySpec(input);
  resolvePruning(spec.pruning, getModel(spec.train.model));
  return spec;
}

/**
 * The ticket's last level (its accuracy and sparsity), its best level, the dense level 0, and each branch's last
 * level: what a sweep over pruning or rewinding compares.
 */
export function lotteryMetrics(r: LotteryResult): Record<string, number> {
  const out: Record<string, number> = {};
  const levels = [...r.levels].sort((a, b) => a.level - b.level);
  const last = levels.at(-1);
  const dense = levels.find((l) => l.level === 0);
  if (last) {
    out.testAccuracy = last.finalTestAccuracy;
    out.remainingPct = last.remainingPct;
    out.levels = last.level;
  }
  if (dense) out.denseTestAccuracy = dense.finalTestAccuracy;
  const best = levels.reduce<LevelResult | null>(
    (b, l) => (b === null || l.finalTestAccuracy > b.finalTestAccuracy ? l : b),
    null,
  );
  if (best) {
    out.bestTestAccuracy = best.finalTestAccuracy;
    out.bestRemainingPct = best.remainingPct;
  }
  for (const b of r.branches) {
    const end = [...b.levels].sort((x, y) => x.level - y.level).at(-1);
    if (end) out[`${b.label}.testAccuracy`] = end.finalTestAccuracy;
  }
  return out;
}

export const lotteryKind: SpecKind<LotterySpec, LotteryResult> = {
  kind: 'lottery',
  summary: 'a lottery-ticket experiment: IMP levels, then its control branches',
  recognises: (raw) => 'levels' in raw || 'pruning' in raw || 'rewind' in raw || 'branches' in raw,
  parse: validateLotterySpec,
  workflowType: 'lotteryWorkflow',
  workflowId: lotteryWorkflowId,
  runKind: 'lottery',
  experiment: (s) => s.experiment,
  describe: (s) =>
    `lottery: ${s.levels} IMP levels of ${s.pruning.kind}` +
    `${'fraction' in s.pruning ? ` ${s.pruning.fraction}` : ''}, rewind to ${rewindName(s.rewind)}, ` +
    `${describeTraining(s.train)}${s.branches.length > 0 ? `; controls: ${s.branches.map(branchLabel).join(', ')}` : ''}`,
  workflowArgs: (s) => [{ spec: s }],
  metrics: lotteryMetrics,
};
