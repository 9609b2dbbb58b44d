import { trainWorkflowId } from '../ids';
import { parseTrainSpec, trainSpecSchema, type TrainSpec } from '../train';
import type { SpecKind } from './kind';

export const trainKind: SpecKind<TrainSpec> = {
  kind: 'train',
  summary: 'one durable training run',
  // Only a training spec's own fields: a lottery or precompute spec has fields of its own besides.
  recognises: (raw) => 'train' in raw && Object.keys(raw).every((k) => k in trainSpecSchema.shape),
  parse: parseTrainSpec,
  workflowType: 'trainWorkflow',
  workflowId: trainWorkflowId,
  runKind: 'train',
  experiment: (s) => s.experiment,
};
