// The identities the system derives from specs: parsed specs, workflow ids, run ids, lineage ids and the store
// keys built from them. test/fixtures/identities.json holds these values as the code computed them before the
// contract/registry refactor; test/spec-identities.test.ts recomputes them, so a move that changes any id or key
// (and so orphans stored artifacts or running workflows) fails.
import fs from 'node:fs';
import path from 'node:path';

import { logitSetKeysFor } from '../../activities/logits';
import { branchLineageId, trunkLineageId } from '../../contract/ids';
import { trainRunId } from '../../contract/ids';
import { recogniseSpecKind, validateLotterySpec } from '../../contract/spec-kinds';
import { lotteryWorkflowId, precomputeWorkflowId, trainWorkflowId } from '../../contract/ids';
import { readSpecFile } from '../../cli/spec-file';
import {
  checkpointKey,
  experimentMetricsKey,
  finalWeightsKey,
  levelManifestKey,
  levelTensorKey,
  rewindStateKey,
  runManifestKey,
  runMetricsKey,
} from '../../store';
import { parsePrecomputeSpec } from '../../contract/precompute';
import { branchWorkflowId } from '../../contract/branches';
import { rewindStep } from '../../contract/rewind';
import { type LotterySpec } from '../../contract/lottery';
import { parseTrainSpec } from '../../contract/train';

export const REPO = path.resolve(__dirname, '..', '..');

function runKeys(runId: string, rewindAt: number) {
  return {
    runId,
    weights: finalWeightsKey(runId),
    metrics: runMetricsKey(runId),
    manifest: runManifestKey(runId),
    checkpoint: checkpointKey(runId, 100),
    rewind: rewindStateKey(runId, rewindAt),
  };
}

function levelKeys(lineageId: string) {
  return [0, 1, 2].map((level) => ({
    weights: levelTensorKey(lineageId, level, 'weights'),
    mask: levelTensorKey(lineageId, level, 'mask'),
    rewind: levelTensorKey(lineageId, level, 'rewind'),
    metrics: experimentMetricsKey(lineageId, level),
    manifest: levelManifestKey(lineageId, level),
  }));
}

function trainIdentity(input: unknown) {
  const spec = parseTrainSpec(input);
  return { spec, workflowId: trainWorkflowId(spec), run: runKeys(trainRunId(spec.train), 0) };
}

function lotteryIdentity(input: unknown) {
  const spec: LotterySpec = validateLotterySpec(input);
  const workflowId = lotteryWorkflowId(spec);
  const trunk = trunkLineageId(spec);
  return {
    spec,
    workflowId,
    dense: runKeys(trainRunId(spec.train), rewindStep(spec.rewind)),
    trunk: { lineageId: trunk, levels: levelKeys(trunk) },
    branches: spec.branches.map((b) => {
      const lineageId = branchLineageId(spec, b);
      return {
        branch: b,
        workflowId: branchWorkflowId(workflowId, b),
        lineageId,
        levels: levelKeys(lineageId),
      };
    }),
  };
}

function precomputeIdentity(input: unknown) {
  const spec = parsePrecomputeSpec(input);
  const keys = logitSetKeysFor(spec, 'ab'.repeat(32), 1000);
  return {
    spec,
    workflowId: precomputeWorkflowId(spec),
    teacherRun: trainRunId(spec.teacher.train),
    logits: {
      hash: keys.hash,
      manifest: keys.manifestKey,
      shard0: keys.shardKey(0),
      shard1: keys.shardKey(1),
    },
  };
}

const ALL_BRANCHES = [
  { kind: 'reinit' },
  { kind: 'reinit', seed: 2 },
  { kind: 'random-prune' },
  { kind: 'random-prune', scope: 'global', seed: 3 },
  { kind: 'one-shot' },
  { kind: 'rewind', to: 'init' },
  { kind: 'rewind', to: { step: 50 } },
];

function lotteryVariants(): Record<string, Record<string, unknown>> {
  const base = readSpecFile(path.join(REPO, 'examples/lottery-lenet-mnist.yaml'));
  const train = {
    model: 'lenet-300-100',
    dataset: 'fashion-mnist',
    optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
    iterations: 300,
    evalEvery: 50,
    trainLimit: 1000,
    testLimit: 200,
  };
  return {
    'all-branches-rewind-init': { ...base, branches: ALL_BRANCHES },
    'all-branches-rewind-step': {
      experiment: 'late',
      train,
      levels: 3,
      rewind: { step: 20 },
      branches: ALL_BRANCHES.filter((b) => b.kind !== 'rewind' || (b.to as unknown) !== 'init'),
    },
    'layerwise-conv2-adam': {
      experiment: 'conv',
      train: { model: 'conv-2', optimizer: { kind: 'adam', lr: 2e-4 }, epochs: 1, seed: 4 },
      pruning: {
        kind: 'layerwise-magnitude',
        fraction: 0.3,
        fractions: { 'conv1.weight': 0.1 },
        exclude: ['fc3.weight'],
      },
      branches: [{ kind: 'one-shot' }, { kind: 'random-prune', scope: 'layerwise' }],
    },
    'global-exclude-sorted': {
      train: { iterations: 100 },
      pruning: { kind: 'global-magnitude', fraction: 0.5, exclude: ['fc3.weight', 'fc1.weight'] },
    },
  };
}

/** The spec files under `dir`, recursively, sorted. */
export function specFiles(dir: string): string[] {
  return fs
    .readdirSync(dir, { withFileTypes: true })
    .flatMap((d) => (d.isDirectory() ? specFiles(path.join(dir, d.name)) : [path.join(dir, d.name)]))
    .filter((f) => /\.(ya?ml|json)$/.test(f))
    .sort();
}

/** Every identity of every example spec and of synthetic specs that reach each branch kind and option. */
export function computeIdentities(): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const file of specFiles(path.join(REPO, 'examples'))) {
    const spec = readSpecFile(file);
    const name = path.relative(REPO, file);
    const kind = recogniseSpecKind(spec)?.kind;
    if (kind === 'lottery') out[name] = lotteryIdentity(spec);
    else if (kind === 'precompute') out[name] = precomputeIdentity(spec);
    else if (kind === 'train') out[name] = trainIdentity(spec);
    // Examples of kinds added after the recording (distill) have no recorded identities to keep.
  }
  for (const [name, spec] of Object.entries(lotteryVariants()))
    out[`lottery:${name}`] = lotteryIdentity(spec);
  const teacher = readSpecFile(path.join(REPO, 'examples/teachers/precompute-mnist.yaml'));
  out['precompute:top-k-shifted'] = precomputeIdentity({
    ...teacher,
    split: 'test',
    limit: 500,
    format: 'top-k',
    k: 3,
    shardSize: 128,
    augmentation: { policy: 'random-shift', seed: 2, maxShift: 3, epoch: 1 },
  });
  out['train:defaults'] = trainIdentity({ train: { iterations: 10 } });
  return out;
}

if (require.main === module) {
  const file = path.join(REPO, 'test/fixtures/identities.json');
  fs.writeFileSync(file, `${JSON.stringify(computeIdentities(), null, 2)}\n`);
  console.log(`wrote ${file}`);
}
