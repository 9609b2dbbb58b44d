// The `train` activity: one durable training run (see durable-training.ts) from the model's seeded
// initialisation, published under runs/<runId>/ (run-records.ts) with its manifest last.
import { trainRunId } from '../contract/ids';
import {
  parseTrainSpec,
  toTrainConfig,
  type TrainActivityInput,
  type TrainRunResult,
} from '../contract/train';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { runDurableTraining, type DurableTrainingDeps } from './durable-training';
import { activity } from './failures';
import { publishTrainRun, readOrHealTrainRun } from './run-records';

export function createTrainActivities(deps: DurableTrainingDeps) {
  async function train(input: TrainActivityInput): Promise<TrainRunResult> {
    const spec = parseTrainSpec(input.spec);
    const runId = trainRunId(spec.train);
    await deps.store.ensureBucket();

    // A damaged finished run (found here, or removed by `lth fsck --repair` and started again with --rerun) is
    // trained again where this worker gives its bytes back.
    let engine: 'tape' | 'graph' | undefined;
    const finished = await readOrHealTrainRun(deps.store, runId, {
      backend: deps.backend,
      what: `the run ${runId}`,
      healing: (key, why, recorded) => {
        deps.log(`healing '${key}': ${why}; training it again`);
        engine = recorded;
      },
    });
    if (finished) {
      deps.log(`run ${runId} already finished; returning its stored result`);
      return { ...finished, reused: true, resumedFromStep: finished.steps };
    }
    const trainData = loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit });
    const testData = loadDataset(spec.train.dataset, 'test', { limit: spec.train.testLimit });
    const config = toTrainConfig(spec.train, trainData.n);
    const outcome = await runDurableTraining(deps, {
      runId,
      config,
      data: { train: trainData, test: testData },
      start: { weights: getModel(config.model).init(config.seed) },
      ...(engine ? { engine } : {}),
      checkpointEvery: spec.checkpointEvery,
      progress: input.progressWorkflowId
        ? { workflowId: input.progressWorkflowId, signal: 'trainProgress' }
        : null,
    });
    const published = await publishTrainRun(deps.store, runId, { spec, config }, outcome);
    await outcome.removeCheckpoints();
    return { ...published, reused: false, resumedFromStep: outcome.resumedFromStep };
  }

  return { train: activity(train) };
}
