import { getModel } from '../../ml/models';
import { lotteryWorkflowId } from '../ids';
import { parseLotterySpec, resolvePruning, type LotterySpec } from '../lottery';
import type { SpecKind } from './kind';

/**
 * Parses a lottery spec and checks what the schema cannot: that every layer it names (pruning.exclude,
 * pruning.fractions) is a prunable weight of its model. Throws SpecError with one line per offending field.
 */
export function validateLotterySpec(input: unknown): LotterySpec {
  const spec = parseLotterySpec(input);
  resolvePruning(spec.pruning, getModel(spec.train.model));
  return spec;
}

export const lotteryKind: SpecKind<LotterySpec> = {
  kind: 'lottery',
  summary: 'a lottery-ticket experiment: IMP levels, then its control branches',
  recognises: (raw) => 'levels' in raw || 'pruning' in raw || 'rewind' in raw || 'branches' in raw,
  parse: validateLotterySpec,
  workflowType: 'lotteryWorkflow',
  workflowId: lotteryWorkflowId,
  runKind: 'lottery',
  experiment: (s) => s.experiment,
};
