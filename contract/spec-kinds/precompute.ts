import { precomputeWorkflowId } from '../ids';
import { parsePrecomputeSpec, type PrecomputeResult, type PrecomputeSpec } from '../precompute';
import type { SpecKind } from './kind';

export const precomputeKind: SpecKind<PrecomputeSpec, PrecomputeResult> = {
  kind: 'precompute',
  summary: "a teacher's logits precomputed once into content-addressed shards",
  recognises: (raw) => 'teacher' in raw,
  parse: parsePrecomputeSpec,
  workflowType: 'precomputeLogitsWorkflow',
  workflowId: precomputeWorkflowId,
  runKind: 'logits',
  experiment: (s) => s.experiment,
  describe: (s) =>
    `logits of teacher ${s.teacher.name} on ${s.dataset ?? s.teacher.train.dataset} ${s.split}` +
    `${s.limit ? ` (first ${s.limit})` : ''}, ${s.format}, shards of ${s.shardSize}`,
  workflowArgs: (s) => [s],
  metrics: (r) => ({
    samples: r.sampleCount,
    shards: r.shards.length,
    computedShards: r.computedShards,
    skippedShards: r.skippedShards,
  }),
};
