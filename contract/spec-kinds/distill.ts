import { parseDistillSpec, type DistillResult, type DistillSpec } from '../distill';
import { distillWorkflowId } from '../ids';
import type { SpecKind } from './kind';
import { describeTraining, runMetrics } from './train';

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
  describe: (s) =>
    `distillation: ViT student from ${s.teachers.map((t) => t.name).join(' + ') || 'no teacher'} ` +
    `(kd ${s.kd.mode}, ${s.targets} targets), ${describeTraining(s.train)}`,
  workflowArgs: (s) => [s],
  metrics: runMetrics,
};
