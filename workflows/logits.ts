import {
  ApplicationFailure,
  defineQuery,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
} from '@temporalio/workflow';

import type { Activities } from '../activities';
import {
  parsePrecomputeSpec,
  type LogitShardResult,
  type PrecomputeResult,
  type PrecomputeStatus,
} from './logits-specs';
import * as sa from './search-attributes';
import { SpecError } from './specs';
import { computeActivityOptions } from './compute-activities';

export const precomputeStatusQuery = defineQuery<PrecomputeStatus>('status');

/**
 * Precomputes a teacher's logits once into content-addressed shards: a plan, one activity per shard on the
 * compute queue (at most `parallelism` at a time), the manifest published last. A set whose manifest verifies
 * is returned at once; stored shards that verify are kept and only missing or damaged ones are recomputed.
 */
export async function precomputeLogitsWorkflow(input: unknown): Promise<PrecomputeResult> {
  let spec;
  try {
    spec = parsePrecomputeSpec(input);
  } catch (err) {
    if (err instanceof SpecError) throw ApplicationFailure.nonRetryable(err.message, 'SpecError');
    throw err;
  }
  const status: PrecomputeStatus = {
    phase: 'planning',
    experiment: spec.experiment,
    shardCount: null,
    done: 0,
    computed: 0,
    skipped: 0,
  };
  setHandler(precomputeStatusQuery, () => status);
  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: spec.experiment },
    { key: sa.RUN_KIND, value: 'logits' },
    { key: sa.PHASE, value: 'planning' },
  ]);
  const { planLogits, precomputeLogitShard, publishLogits } = proxyActivities<Activities>(
    computeActivityOptions(spec.heartbeatTimeoutSeconds, { startToCloseTimeout: '1 day' }),
  );
  try {
    const plan = await planLogits({ spec: input });
    status.shardCount = plan.shardCount;
    if (plan.complete) {
      status.phase = 'done';
      status.done = plan.shardCount;
      upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
      return {
        manifestKey: plan.manifestKey,
        sampleCount: plan.sampleCount,
        shards: [],
        computedShards: 0,
        skippedShards: plan.shardCount,
        reused: true,
      };
    }
    // What the shards and the publish need from the plan, so they do not look the teacher up again.
    const planRef = { weights: plan.weights, sampleCount: plan.sampleCount };
    status.phase = 'computing';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'computing' }]);
    const shards: LogitShardResult[] = new Array<LogitShardResult>(plan.shardCount);
    let next = 0;
    // A fixed pool of lanes, each taking the next shard: bounded parallelism, deterministic scheduling order.
    const lane = async (): Promise<void> => {
      while (next < plan.shardCount) {
        const i = next++;
        const r = await precomputeLogitShard({ spec: input, shard: i, plan: planRef });
        shards[i] = r;
        status.done++;
        if (r.skipped) status.skipped++;
        else status.computed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(spec.parallelism, plan.shardCount) }, lane));
    status.phase = 'publishing';
    const manifestKey = await publishLogits({ spec: input, shards, plan: planRef });
    status.phase = 'done';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
    return {
      manifestKey,
      sampleCount: plan.sampleCount,
      shards,
      computedShards: status.computed,
      skippedShards: status.skipped,
      reused: false,
    };
  } catch (err) {
    status.phase = 'failed';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'failed' }]);
    throw err;
  }
}
