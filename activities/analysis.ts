// One geometry measure of one stored solution (ml/geometry): content-addressed under analysis/<id>/ (the id hashes
// the weights' and masks' checksums, the data subset, the measure and its options), reused when its result exists.
// Partial state (slice points, power-iteration vectors, Hutchinson samples, radii) is checkpointed to the store
// every `checkpointSeconds`, so a lost worker costs at most that much; heartbeats go out on every step.
import { Context } from '@temporalio/activity';
import { z } from 'zod';

import type { MeasureActivityInput, MeasureRecord } from '../contract/analysis';
import { loadDataset } from '../ml/data';
import {
  MEASURE_INPUTS,
  MEASURES,
  flatten,
  modelObjective,
  replicatePlan,
  summarizeReplicates,
  type MeasureOutput,
  type MeasureState,
  type Replicate,
} from '../ml/geometry';
import type { NamedTensors } from '../ml/host-tensor';
import { getModel } from '../ml/models';
import { storedWeights } from '../ml/train';
import { analysisKey, contentHash, type ArtifactStore, type ObjectRef } from '../store';
import type { DurableTrainingDeps } from './durable-training';
import { activity } from './failures';

const resultSchema = z.object({
  measure: z.string(),
  summary: z.record(z.string(), z.number().nullable()),
});

/** Everything a measure's result depends on; its hash names the result's folder. */
export function measureIdentity(input: MeasureActivityInput): string {
  const { target, measure, config } = input;
  const { reads, revision, replicated } = MEASURE_INPUTS[measure];
  return contentHash({
    kind: 'geometry',
    measure,
    options: config.options[measure],
    ...(revision ? { revision } : {}),
    ...(replicated ? { replicates: config.replicates } : {}),
    subset: config.subset,
    batchSize: config.batchSize,
    seed: config.seed,
    model: target.model,
    dataset: target.dataset,
    weights: target.weights.sha256,
    mask: target.mask?.sha256 ?? null,
    ...(reads.includes('rewind') ? { rewind: target.rewind?.sha256 ?? null } : {}),
    ...(reads.includes('twin') ? { twin: target.twin?.weights.sha256 ?? null } : {}),
    ...(reads.includes('previous')
      ? {
          previous: target.previous
            ? [target.previous.weights.sha256, target.previous.mask?.sha256 ?? null]
            : null,
        }
      : {}),
  }).slice(0, 24);
}

// A measure's state as safetensors: float64 vectors as tensors, everything else as JSON in the header, each vector
// replaced there by {"$f64": "<tensor name>"}.
function encodeState(state: MeasureState): { tensors: NamedTensors; metadata: Record<string, string> } {
  const tensors: NamedTensors = {};
  const json = JSON.stringify(state, (_key, value: unknown) => {
    if (value instanceof Float64Array) {
      const name = `v${Object.keys(tensors).length}`;
      tensors[name] = { dtype: 'float64', shape: [value.length], data: value };
      return { $f64: name };
    }
    return value;
  });
  return { tensors, metadata: { state: json } };
}

function decodeState(tensors: NamedTensors, metadata: Record<string, string>): MeasureState {
  return JSON.parse(metadata.state ?? '{}', (_key, value: unknown) => {
    if (value && typeof value === 'object' && '$f64' in value) {
      const t = tensors[(value as { $f64: string }).$f64];
      if (!t || t.dtype !== 'float64') throw new Error('measure checkpoint: a vector is missing');
      return t.data;
    }
    return value;
  }) as MeasureState;
}

/** A stored solution's weights, checked against the ref's checksum. */
export async function weightsAt(store: ArtifactStore, ref: ObjectRef): Promise<NamedTensors> {
  const { tensors, metadata } = await store.getTensors(ref.key, { expectSha256: ref.sha256 });
  return storedWeights(tensors, metadata);
}

export function createAnalysisActivities(deps: DurableTrainingDeps & { analysisCheckpointSeconds?: number }) {
  const store = deps.store;
  const checkpointMs = (deps.analysisCheckpointSeconds ?? 30) * 1000;

  async function analyzeMeasure(input: MeasureActivityInput): Promise<MeasureRecord> {
    const { target, measure, config } = input;
    const id = measureIdentity(input);
    const [resultKey, arraysKey, progressKey] = [
      analysisKey(id, 'result.json'),
      analysisKey(id, 'arrays.safetensors'),
      analysisKey(id, 'progress.safetensors'),
    ];
    if (await store.exists(resultKey)) {
      const r = await store.getJson(resultKey, resultSchema);
      return {
        measure,
        resultKey,
        arraysKey,
        summary: numbers(r.summary),
        reused: true,
        resumedFrom: 0,
        seconds: 0,
      };
    }
    const started = performance.now();
    const model = getModel(target.model);
    const masks = target.mask
      ? (await store.getTensors(target.mask.key, { expectSha256: target.mask.sha256 })).tensors
      : undefined;
    const weights = await weightsAt(store, target.weights);
    // Replicated measures run once per (training subset, probe seed); the others once, on subset 0.
    const plan = MEASURE_INPUTS[measure].replicated
      ? replicatePlan(config.seed, config.replicates)
      : [{ subset: 0, seed: config.seed }];
    const trainOn = (subset: number) =>
      modelObjective(
        model,
        loadDataset(target.dataset, 'train', {
          limit: config.subset.train,
          offset: subset * config.subset.train,
        }),
        { masks, batchSize: config.batchSize },
      );
    let train = trainOn(0);
    let trainSubset = 0;
    const test = modelObjective(model, loadDataset(target.dataset, 'test', { limit: config.subset.test }), {
      masks,
      batchSize: config.batchSize,
    });
    const ctx = Context.current();
    let steps = 0;
    let resumedFrom = 0;
    let resume: MeasureState | null = null;
    if (await store.exists(progressKey)) {
      const { tensors, metadata } = await store.getTensors(progressKey);
      resume = decodeState(tensors, metadata);
      resumedFrom = steps = Number(metadata.steps ?? 0);
      deps.log(`analysis ${id} ${measure}: resuming from checkpointed step ${resumedFrom}`);
    }
    let lastWrite = performance.now();
    // Between steps too (a measure without steps, a slow evaluation), so a live worker is never taken for lost.
    const beat = setInterval(() => ctx.heartbeat({ measure, steps }), 1_000);
    try {
      const previous = target.previous
        ? {
            theta: flatten(train.space, await weightsAt(store, target.previous.weights)),
            masks: target.previous.mask
              ? (
                  await store.getTensors(target.previous.mask.key, {
                    expectSha256: target.previous.mask.sha256,
                  })
                ).tensors
              : null,
          }
        : null;
      const [theta, rewind, twin] = [
        flatten(train.space, weights),
        target.rewind ? flatten(train.space, await weightsAt(store, target.rewind)) : null,
        target.twin ? flatten(train.space, await weightsAt(store, target.twin.weights)) : null,
      ];
      // Progress: the finished runs' outputs, and the state of the one under way.
      const progress = {
        done: ((resume?.done as MeasureOutput[] | undefined) ?? []).slice(),
        current: (resume?.current as MeasureState | null | undefined) ?? null,
      };
      const save = async (force: boolean) => {
        steps++;
        ctx.heartbeat({ measure, steps });
        if (!force && performance.now() - lastWrite < checkpointMs) return;
        const { tensors, metadata } = encodeState(progress as unknown as MeasureState);
        await store.putTensors(progressKey, tensors, { ...metadata, steps: String(steps), measure });
        lastWrite = performance.now();
      };
      for (let r = progress.done.length; r < plan.length; r++) {
        const run = plan[r] as Replicate;
        if (run.subset !== trainSubset) {
          train.dispose();
          train = trainOn(run.subset);
          trainSubset = run.subset;
        }
        const out = await MEASURES[measure](
          {
            train,
            test,
            theta,
            seed: run.seed,
            masks: masks ?? null,
            rewind,
            previous,
            twin,
            resume: progress.current,
            checkpoint(state) {
              progress.current = state;
              return save(false);
            },
          },
          config.options[measure] as never,
        );
        progress.done.push(out);
        progress.current = null;
        if (r + 1 < plan.length) await save(false);
      }
      const output =
        plan.length > 1 ? summarizeReplicates(progress.done) : (progress.done[0] as MeasureOutput);
      const seconds = (performance.now() - started) / 1000;
      const arrays: NamedTensors = {};
      for (const [name, a] of Object.entries(output.arrays))
        arrays[name] = { dtype: 'float64', shape: [a.length], data: a };
      await store.putTensors(arraysKey, arrays, { measure, id });
      // The result last: a measure is finished exactly when its result exists. Its time is not in it: a stored
      // result is a pure function of its identity, byte for byte the same however often it was interrupted.
      await store.putJson(resultKey, {
        measure,
        id,
        target,
        config: config.options[measure],
        subset: config.subset,
        seed: config.seed,
        ...(plan.length > 1 ? { replicates: plan } : {}),
        summary: output.summary,
      });
      if (await store.exists(progressKey)) await store.remove(progressKey);
      deps.log(`analysis ${id} ${measure} (${target.label} level ${target.level}): ${seconds.toFixed(1)} s`);
      return { measure, resultKey, arraysKey, summary: output.summary, reused: false, resumedFrom, seconds };
    } finally {
      clearInterval(beat);
      train.dispose();
      test.dispose();
    }
  }

  return { analyzeMeasure: activity(analyzeMeasure) };
}

/** JSON has no NaN: a summary value that was NaN comes back as null, and goes on as NaN. */
function numbers(summary: Record<string, number | null>): Record<string, number> {
  return Object.fromEntries(Object.entries(summary).map(([k, v]) => [k, v ?? NaN]));
}
