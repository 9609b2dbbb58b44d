/**
 * Step engines (ml/train/engines/): a run is exact by its own record. On the graph engine every step, the first of
 * each batch size included, comes from the graph, so a run resumed from a mid-epoch state in a new trainer (a new
 * trace) ends with the bytes of an undisturbed run: conv net masked, the involution teacher, the ViT, Adam. The
 * state records its engine family and a continued run uses it, or refuses naming both; a new run takes LTH_ENGINE
 * where it can and otherwise says why not; no tensor or graph session outlives a trainer. Its own process: it loads
 * the native backend.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';

import * as tf from '@tensorflow/tfjs-core';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import {
  distillTokensFor,
  distillationTotal,
  KD_MODE_DEFS,
  KD_MODES,
  objectiveFor,
  type TeacherTargets,
} from '../ml/distill';
import { EngineUnavailableError } from '../ml/errors';
import { getModel, vitModel, type VitModelDef } from '../ml/models';
import type { ModelDef } from '../ml/models/types';
import { hostBytesEqual, type NamedTensors } from '../ml/tensors';
import {
  MlInputError,
  stateFromTensors,
  stateToTensors,
  train,
  Trainer,
  type OptimizerSpec,
  type StepObjective,
  type TrainConfig,
  type TrainResult,
  type TrainState,
} from '../ml/train';
import { withEnv } from './support/env';
import { randomMasks } from './support/random-weights';

const skip = process.env.LTH_NATIVE === 'off' ? 'LTH_NATIVE=off' : false;

// 40 samples in batches of 16: steps of 16, 16 and 8 samples, so a run of 7 steps crosses two epoch boundaries
// and a resume at step 4 starts mid-epoch.
const trainData = loadDataset('mnist', 'train', { limit: 40 });
const testData = loadDataset('mnist', 'test', { limit: 20 });
const SGD: OptimizerSpec = { kind: 'sgd', lr: 0.02, momentum: 0.9, weightDecay: 1e-4 };
const ADAM: OptimizerSpec = { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 };

function config(model: string, optimizer: OptimizerSpec = SGD, iterations = 7): TrainConfig {
  return {
    model,
    dataset: 'mnist',
    optimizer,
    batchSize: 16,
    iterations,
    evalEvery: 0,
    seed: 7,
    trainLimit: 40,
    testLimit: 20,
  };
}

function assertSameState(a: TrainState, b: TrainState, what: string): void {
  assert.equal(a.step, b.step, `${what}: step`);
  for (const [k, t] of Object.entries(a.weights))
    assert.ok(hostBytesEqual(t, b.weights[k]!), `${what}: weights ${k}`);
  for (const [k, t] of Object.entries(a.optimizer))
    assert.ok(hostBytesEqual(t, b.optimizer[k]!), `${what}: optimizer ${k}`);
  assert.ok(Object.is(a.lastLoss, b.lastLoss), `${what}: loss ${a.lastLoss} vs ${b.lastLoss}`);
}

/** An undisturbed run, and its state after `at` steps as a stored checkpoint reads back. */
async function runAndCheckpoint(
  cfg: TrainConfig,
  at: number,
  opts: { model?: ModelDef; masks?: NamedTensors } = {},
): Promise<{ whole: TrainResult; checkpoint: TrainState }> {
  let checkpoint: TrainState | null = null;
  const whole = await train(
    cfg,
    { train: trainData, test: testData },
    {
      ...opts,
      checkpointEvery: at,
      onCheckpoint: async (s) => {
        if (s.step !== at) return;
        const { tensors, metadata } = stateToTensors(s);
        checkpoint = stateFromTensors(tensors, metadata);
      },
    },
  );
  assert.ok(checkpoint, `a checkpoint at step ${at}`);
  return { whole, checkpoint };
}

const CASES: { name: string; model: string; optimizer: OptimizerSpec; masked?: boolean }[] = [
  { name: 'cnn-teacher, masked, SGD', model: 'cnn-teacher', optimizer: SGD, masked: true },
  { name: 'involution-teacher, SGD', model: 'involution-teacher', optimizer: SGD },
  { name: 'vit-tiny, Adam', model: 'vit-tiny', optimizer: ADAM },
  { name: 'conv-2, Adam (its step size fed at every step)', model: 'conv-2', optimizer: ADAM },
];

for (const c of CASES) {
  test(
    `graph engine: ${c.name} resumed mid-epoch in a new trainer ends with the undisturbed run's bytes`,
    { skip },
    async () => {
      await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
      const cfg = config(c.model, c.optimizer);
      const masks = c.masked ? randomMasks(getModel(c.model).params, 3, 0.5) : undefined;
      const { whole, checkpoint } = await runAndCheckpoint(cfg, 4, masks ? { masks } : {});
      assert.equal(whole.engine?.name, 'graph', `${c.model} runs on the graph engine by default`);
      assert.deepEqual(whole.engine?.notes, []);
      assert.equal(checkpoint.engine, 'graph', 'the checkpoint records its engine family');
      assert.equal(whole.state.engine, 'graph');
      const resumed = await train(
        cfg,
        { train: trainData, test: testData },
        {
          resumeFrom: checkpoint,
          ...(masks ? { masks } : {}),
        },
      );
      assert.equal(resumed.engine?.name, 'graph');
      assertSameState(resumed.state, whole.state, c.name);
    },
  );
}

test(
  'a state records its engine family, and a run continues on it or refuses naming both',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const cfg = config('conv-2');
    const { checkpoint: graphState } = await runAndCheckpoint(cfg, 4);
    // Where the graph engine cannot run (here: the tape forced), continuing on the tape would give other bytes.
    await assert.rejects(
      withEnv({ LTH_NATIVE_STEP: 'off' }, () =>
        train(cfg, { train: trainData, test: testData }, { resumeFrom: graphState }),
      ),
      (e: unknown) =>
        e instanceof EngineUnavailableError &&
        e.nonRetryable &&
        /computed by the graph engine/.test(e.message) &&
        /LTH_NATIVE_STEP=off/.test(e.message),
    );
    // A state from the tape continues on the tape, whatever LTH_ENGINE asks, and says so. Stored, a tape state has no
    // engine field (its bytes as they always were): whoever reads a checkpoint back says it is the tape's.
    const { checkpoint: tapeState, whole: tapeWhole } = await withEnv({ LTH_ENGINE: 'tape' }, () =>
      runAndCheckpoint(cfg, 4),
    );
    assert.equal(tapeWhole.engine?.name, 'tape');
    assert.equal(tapeWhole.state.engine, 'tape', 'in memory, a state names its family');
    assert.equal(tapeState.engine, undefined, 'stored, a tape state carries no engine field');
    assert.equal(stateToTensors(tapeWhole.state).metadata.engine, undefined);
    const continued = await withEnv({ LTH_ENGINE: 'graph' }, () =>
      train(cfg, { train: trainData, test: testData }, { resumeFrom: tapeState, engine: 'tape' }),
    );
    assert.equal(continued.engine?.name, 'tape');
    assert.match(continued.engine?.notes.join('\n') ?? '', /LTH_ENGINE=graph ignored/);
    assertSameState(continued.state, tapeWhole.state, 'tape run continued on the tape');
    // A recomputation (heal) is told the family its record names, whatever the worker would pick for a new run.
    const healed = await withEnv({ LTH_ENGINE: 'tape' }, () =>
      train(cfg, { train: trainData, test: testData }, { engine: 'graph' }),
    );
    assert.equal(healed.engine?.name, 'graph');
    const { whole: graphWhole } = await runAndCheckpoint(cfg, 4);
    assertSameState(healed.state, graphWhole.state, 'recomputed on the recorded engine');
    // A metadata engine this version does not know is refused, naming the field.
    const { tensors, metadata } = stateToTensors(graphState);
    assert.throws(
      () => stateFromTensors(tensors, { ...metadata, engine: 'xla' }),
      (e: unknown) => e instanceof MlInputError && /metadata\.engine is 'xla'/.test(e.message),
    );
  },
);

test(
  'the engine a new run gets: the fastest exact one, LTH_ENGINE where it can, and why not where not',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const engineOf = (cfg: TrainConfig, model?: ModelDef) => {
      const m = model ?? getModel(cfg.model);
      const t = new Trainer(cfg, trainData, { weights: m.init(cfg.seed), model: m });
      try {
        return t.engineInfo;
      } finally {
        t.dispose();
      }
    };
    assert.equal(engineOf(config('lenet-300-100')).name, 'native-dense');
    assert.equal(engineOf(config('lenet-300-100')).family, 'tape');
    assert.equal(engineOf(config('lenet-300-100', ADAM)).name, 'graph');
    assert.equal(engineOf(config('conv-4')).name, 'graph');
    assert.equal(withEnv({ LTH_ENGINE: 'tape' }, () => engineOf(config('conv-4'))).name, 'tape');
    assert.equal(withEnv({ LTH_ENGINE: 'graph' }, () => engineOf(config('lenet-300-100'))).name, 'graph');
    const noisy = { ...getModel('cnn-teacher'), stochastic: true };
    const info = withEnv({ LTH_ENGINE: 'graph' }, () => engineOf(config('cnn-teacher'), noisy));
    assert.equal(info.name, 'tape');
    assert.match(
      info.notes.join('\n'),
      /LTH_ENGINE=graph: on the tape instead, because cnn-teacher draws dropout/,
    );
    assert.match(
      engineOf(config('cnn-teacher'), noisy).notes.join('\n'),
      /on the tape, not a graph: .*noise/,
    );
    assert.throws(
      () => withEnv({ LTH_ENGINE: 'fast' }, () => engineOf(config('conv-2'))),
      (e: unknown) =>
        e instanceof MlInputError && /LTH_ENGINE is 'fast'; expected one of tape, graph/.test(e.message),
    );
  },
);

const savedModels = () =>
  (tf.backend() as unknown as { binding: { getNumOfSavedModels(): number } }).binding.getNumOfSavedModels();

test(
  'graph engine steps leak no tensor, and a trainer closes its graph sessions when disposed',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const before = savedModels();
    const cfg = config('cnn-teacher');
    const t = new Trainer(cfg, trainData, { weights: getModel('cnn-teacher').init(cfg.seed) });
    try {
      for (let s = 0; s < 4; s++) t.trainStep();
      await t.readLoss();
      // One graph per batch size (16, then the epoch's last 8).
      assert.equal(savedModels(), before + 2);
      const base = tf.memory().numTensors;
      for (let s = 0; s < 6; s++) t.trainStep();
      await t.readLoss();
      assert.equal(tf.memory().numTensors, base);
    } finally {
      t.dispose();
    }
    assert.equal(savedModels(), before);
  },
);

/**
 * A distillation-like objective that declares its feeds: a soft target per sample that changes with every batch
 * (a pure function of the sample's index), and the labels from the batch's label tensor.
 */
function fedObjective(): StepObjective<tf.Tensor2D> {
  return {
    prepare: (indices) =>
      Promise.resolve(
        tf.tensor2d(
          Float32Array.from({ length: indices.length * 10 }, (_, k) =>
            Math.sin(((indices[Math.floor(k / 10)] as number) + 1) * 1.7 + (k % 10)),
          ),
          [indices.length, 10],
        ),
      ),
    loss: (model, params, batch) => {
      const logits = model.forward(params, batch.x, true, batch.noise);
      const soft = tf.neg(
        tf.mean(tf.sum(tf.mul(tf.softmax(tf.mul(batch.extras, 3)), tf.logSoftmax(logits)), 1)),
      );
      const hard = tf.losses.softmaxCrossEntropy(tf.oneHot(batch.labelTensor, 10), logits);
      return tf.add(soft, hard) as tf.Scalar;
    },
    feeds: (extras) => ({ teacher: extras }),
    release: (extras) => extras.dispose(),
  };
}

test(
  'graph engine: an objective that declares its feeds runs as a graph, resumes exactly, and reads every step its own targets',
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const cfg = config('vit-tiny', ADAM);
    const objective = fedObjective() as StepObjective<unknown>;
    let checkpoint: TrainState | null = null;
    const whole = await train(
      cfg,
      { train: trainData, test: testData },
      {
        objective,
        checkpointEvery: 4,
        onCheckpoint: async (s) => {
          if (s.step === 4) checkpoint = s;
        },
      },
    );
    assert.equal(whole.engine?.name, 'graph');
    assert.ok(checkpoint);
    const resumed = await train(
      cfg,
      { train: trainData, test: testData },
      { objective, resumeFrom: checkpoint },
    );
    assertSameState(resumed.state, whole.state, 'objective resumed');

    // Step by step against the tape: a target or label frozen into the graph at its trace would show from step 2 on.
    const losses = async (engine: 'graph' | 'tape') =>
      withEnv({ LTH_ENGINE: engine }, () => {
        const m = getModel('vit-tiny');
        return new Trainer(cfg, trainData, { weights: m.init(cfg.seed), objective: 'fed' });
      });
    const [g, t] = [await losses('graph'), await losses('tape')];
    try {
      assert.equal(g.engineInfo.name, 'graph');
      assert.equal(t.engineInfo.name, 'tape');
      const def = fedObjective();
      for (let s = 0; s < 5; s++) {
        for (const trainer of [g, t]) {
          const extras = await def.prepare(trainer.batchIndices(s), 0);
          trainer.trainStep({ def, extras });
          def.release?.(extras);
        }
        const [a, b] = [await g.readLoss(), await t.readLoss()];
        assert.ok(
          Math.abs((a as number) - (b as number)) < 1e-4 * Math.abs(b as number),
          `step ${s}: ${a} vs ${b}`,
        );
      }
    } finally {
      g.dispose();
      t.dispose();
    }
  },
);

test(
  "graph engine: a ViT with dropout and drop-path draws the step's noise before the step and feeds it",
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const base = getModel('vit-tiny') as VitModelDef;
    const model = vitModel('vit-tiny', { ...base.config, dropout: 0.1, dropPath: 0.2 });
    assert.ok(model.stochastic);
    // The noise handed over is the noise forward draws: the same logits to the byte (so tape runs keep their bytes).
    const weights = model.init(3);
    const params = Object.fromEntries(
      Object.entries(weights).map(([k, t]) => [k, tf.tensor(t.data, t.shape)]),
    );
    const x = tf.tensor(trainData.images.slice(0, 8 * 784), [8, 28, 28, 1]);
    const noise = model.noiseTensors!({ seed: 9 }, 8);
    try {
      const drawn = model.forward(params, x, true, { seed: 9 });
      const given = model.forward(params, x, true, { seed: 9, tensors: noise });
      assert.deepEqual(Array.from(given.dataSync()), Array.from(drawn.dataSync()));
      tf.dispose([drawn, given]);
    } finally {
      tf.dispose([x, ...Object.values(params), ...Object.values(noise)]);
    }

    const cfg = config('vit-tiny', ADAM);
    const { whole, checkpoint } = await runAndCheckpoint(cfg, 4, { model });
    assert.equal(whole.engine?.name, 'graph');
    const resumed = await train(cfg, { train: trainData, test: testData }, { model, resumeFrom: checkpoint });
    assertSameState(resumed.state, whole.state, 'regularised ViT resumed');
    // Every step's noise is its own (not the traced step's): the graph's losses follow the tape's.
    const make = (engine: 'graph' | 'tape') =>
      withEnv(
        { LTH_ENGINE: engine },
        () => new Trainer(cfg, trainData, { weights: model.init(cfg.seed), model }),
      );
    const [g, t] = [make('graph'), make('tape')];
    try {
      assert.equal(g.engineInfo.name, 'graph');
      for (let s = 0; s < 5; s++) {
        g.trainStep();
        t.trainStep();
        const [a, b] = [(await g.readLoss()) as number, (await t.readLoss()) as number];
        assert.ok(Math.abs(a - b) < 1e-4 * Math.abs(b), `step ${s}: ${a} vs ${b}`);
      }
    } finally {
      g.dispose();
      t.dispose();
    }
  },
);

test(
  "graph engine: every KD mode's objective, with its tokens and stored targets fed, follows the tape step for step",
  { skip },
  async () => {
    await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
    const base = getModel('vit-tiny') as VitModelDef;
    for (const mode of KD_MODES) {
      const teachers = KD_MODE_DEFS[mode].teachers[0] === 0 ? 0 : 2 <= KD_MODE_DEFS[mode].teachers[1] ? 2 : 1;
      const objective = objectiveFor(mode, teachers, { temperature: 2, alpha: 0.5 });
      const student = vitModel('vit-tiny', { ...base.config, distillTokens: distillTokensFor(objective) });
      // Stored targets as the distillation activity reads them: a pure function of the samples, new every batch.
      const def: StepObjective<TeacherTargets[]> = {
        prepare: (indices) =>
          Promise.resolve(
            Array.from({ length: teachers }, (_, t) => ({
              kind: 'logits' as const,
              values: tf.tensor2d(
                Float32Array.from(
                  { length: indices.length * 10 },
                  (_, k) => Math.cos(((indices[Math.floor(k / 10)] as number) + 3 * t) * 0.9 + (k % 10)) * 4,
                ),
                [indices.length, 10],
              ),
            })),
          ),
        loss: (m, params, batch) =>
          distillationTotal(
            (m as VitModelDef).tokenLogits(params, batch.x, true, batch.noise),
            batch.labelTensor,
            batch.extras,
            objective,
          ),
        feeds: (extras) => Object.fromEntries(extras.map((t, i) => [`teacher/${i}`, t.values])),
        release: (extras) => tf.dispose(extras.map((t) => t.values)),
      };
      const cfg = config('vit-tiny', ADAM);
      const make = (engine: 'graph' | 'tape') =>
        withEnv(
          { LTH_ENGINE: engine },
          () =>
            new Trainer(cfg, trainData, {
              weights: student.init(cfg.seed),
              model: student,
              objective: 'fed',
            }),
        );
      const [g, t] = [make('graph'), make('tape')];
      try {
        assert.equal(g.engineInfo.name, 'graph', mode);
        for (let s = 0; s < 4; s++) {
          for (const trainer of [g, t]) {
            const extras = await def.prepare(trainer.batchIndices(s), 0);
            trainer.trainStep({ def, extras });
            def.release?.(extras);
          }
          const [a, b] = [(await g.readLoss()) as number, (await t.readLoss()) as number];
          assert.ok(Math.abs(a - b) < 1e-4 * Math.abs(b), `${mode} step ${s}: ${a} vs ${b}`);
        }
        assert.deepEqual(g.engineInfo.notes, [], mode);
      } finally {
        g.dispose();
        t.dispose();
      }
    }
  },
);
