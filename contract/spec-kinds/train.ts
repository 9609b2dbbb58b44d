import { trainWorkflowId } from '../ids';
import { parseTrainSpec, trainSpecSchema, type TrainRunResult, type TrainSpec } from '../train';
import type { SpecKind } from './kind';

/** A finished run's final evaluation and length (training and distillation runs alike). */
export function runMetrics(r: TrainRunResult): Record<string, number> {
  return {
    testAccuracy: r.final.testAccuracy,
    testLoss: r.final.testLoss,
    trainAccuracy: r.final.trainAccuracy,
    trainLoss: r.final.trainLoss,
    steps: r.steps,
  };
}

/** `lenet-300-100 on mnist, 2 epochs of sgd lr 0.1 batch 128, seed 0`: a training config in one line. */
export function describeTraining(t: TrainSpec['train']): string {
  const length = t.epochs !== undefined ? `${t.epochs} epochs` : `${t.iterations} steps`;
  return `${t.model} on ${t.dataset}, ${length} of ${t.optimizer.kind} lr ${t.optimizer.lr} batch ${t.batchSize}, seed ${t.seed}`;
}

export const trainKind: SpecKind<TrainSpec, TrainRunResult> = {
  kind: 'train',
  summary: 'one durable training run',
  // Only a training spec's own fields: a lottery or precompute spec has fields of its own besides.
  recognises: (raw) => 'train' in raw && Object.keys(raw).every((k) => k in trainSpecSchema.shape),
  parse: parseTrainSpec,
  workflowType: 'trainWorkflow',
  workflowId: trainWorkflowId,
  runKind: 'train',
  experiment: (s) => s.experiment,
  describe: (s) => `training: ${describeTraining(s.train)}`,
  workflowArgs: (s) => [s],
  metrics: runMetrics,
};
