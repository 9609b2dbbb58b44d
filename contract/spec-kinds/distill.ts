import { parseDistillSpec, type DistillResult, type DistillSpec } from '../distill';
import { distillWorkflowId } from '../ids';
import type { SpecKind } from './kind';
import { runMetrics } from './train';

export const distillKind: SpecKind<DistillSpec, DistillResult> = {
  kind: 'distill',
  summary:
    'a ViT student distilled from its teachers’ stored logits (training and precomputing missing teachers)',
  recognises: (raw) => 'kd' in raw || 'student' in raw || ('teachers' in raw && !('teacher' in raw)),
  parse: parseDistillSpec,
  workflowType: 'distillWorkflow',
  workflowId: distillWorkflowId,
  runKind: 'distill',
  experiment: (s) => s.experiment,
  workflowArgs: (s) => [s],
  metrics: runMetrics,
};
