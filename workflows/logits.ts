import { defineQuery, setHandler, upsertSearchAttributes } from '@temporalio/workflow';

import {
  parsePrecomputeSpec,
  type LogitShardResult,
  type PrecomputeResult,
  type PrecomputeStatus,
} from '../contract/precompute';
import * as sa from '../contract/search-attributes';
import { computeActivities } from './compute-activities';
import { parseInput } from './spec-input';

export const precomputeStatusQuery = defineQuery<PrecomputeStatus>('status');

/**
 * Precomputes a teacher's logits once into content-addressed shards: a plan, one activity per shard on the
 * compute queue (at most `parallelism` at a time), the manifest published last. A set whose manifest verifies
 * is returned at once; stored shards that verify are kept and only missing or damaged ones are recomputed.
 */
export async function precomputeLogitsWorkflow(input: unknown): Promise<PrecomputeResult> {
  const spec = parseInput(parsePrecomputeSpec, input);
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
  const { planLogits, precomputeLogitShard, publishLogits } = computeActivities(
    spec.heartbeatTimeoutSeconds,
    {
      startToCloseTimeout: '1 day',
    },
  );
  try {
    const plan = await planLogits({ spec });
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
        const r = await precomputeLogitShard({ spec, shard: i, plan: planRef });
        shards[i] = r;
        status.done++;
        if (r.skipped) status.skipped++;
        else status.computed++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(spec.parallelism, plan.shardCount) }, lane));
    status.phase = 'publishing';
    const manifestKey = await publishLogits({ spec, shards, plan: planRef });
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
