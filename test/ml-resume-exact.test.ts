import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { hostBytesEqual, type NamedTensors } from '../ml/tensors';
import {
  MlInputError,
  stateFromTensors,
  stateToTensors,
  train,
  type OptimizerSpec,
  type TrainConfig,
  type TrainState,
} from '../ml/train';
import { randomMasks } from './support/random-weights';

// 100 samples in batches of 16: 7 steps per epoch, the last one of 4 samples, so 16 steps cross two epoch
// boundaries and partial batches.
const trainData = loadDataset('mnist', 'train', { limit: 100 });
const testData = loadDataset('mnist', 'test', { limit: 100 });
const N = 16;

function config(optimizer: OptimizerSpec): TrainConfig {
  return {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer,
    batchSize: 16,
    iterations: N,
    evalEvery: 7,
    seed: 11,
    trainLimit: 100,
    testLimit: 100,
  };
}

const OPTIMIZERS: OptimizerSpec[] = [
  { kind: 'sgd', lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 5e-4 },
  { kind: 'adam', lr: 1.2e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 5e-4 },
];

function masksFor(seed: number): NamedTensors {
  return randomMasks(getModel('lenet-300-100').params, seed, 0.5);
}

function assertStatesIdentical(a: TrainState, b: TrainState, what: string): void {
  assert.equal(a.step, b.step, `${what}: step`);
  assert.deepEqual(Object.keys(a.weights).sort(), Object.keys(b.weights).sort());
  for (const [k, t] of Object.entries(a.weights))
    assert.ok(hostBytesEqual(t, b.weights[k]!), `${what}: weights ${k} bytes`);
  assert.deepEqual(Object.keys(a.optimizer).sort(), Object.keys(b.optimizer).sort());
  for (const [k, t] of Object.entries(a.optimizer)) {
    assert.ok(hostBytesEqual(t, b.optimizer[k]!), `${what}: optimizer ${k} bytes`);
  }
  assert.deepEqual(a.evals, b.evals, `${what}: evals (no eval doubled or skipped)`);
  assert.ok(Object.is(a.lastLoss, b.lastLoss), `${what}: lastLoss ${a.lastLoss} vs ${b.lastLoss}`);
  assert.deepEqual(a.rng, b.rng, `${what}: data cursor`);
}

/** The round trip a checkpoint makes through the store (safetensors header metadata is strings). */
function throughStore(s: TrainState): TrainState {
  const { tensors, metadata } = stateToTensors(s);
  return stateFromTensors(tensors, JSON.parse(JSON.stringify(metadata)) as Record<string, string>);
}

for (const backend of ['cpu', 'wasm'] as BackendName[]) {
  for (const optimizer of OPTIMIZERS) {
    const masked = optimizer.kind === 'adam';
    test(`resume is bit-identical: ${optimizer.kind}${masked ? ' with masks' : ''} on ${backend}`, async () => {
      const info = await selectBackend({
        prefer: backend,
        threads: backend === 'wasm' ? 1 : undefined,
        log: () => {},
      });
      assert.equal(info.name, backend);
      const cfg = config(optimizer);
      const masks = masked ? masksFor(3) : undefined;
      const initialWeights = getModel(cfg.model).init(cfg.seed);
      const data = { train: trainData, test: testData };

      const checkpoints = new Map<number, TrainState>();
      const full = await train(cfg, data, {
        initialWeights,
        masks,
        checkpointEvery: 1,
        onCheckpoint: async (s) => {
          checkpoints.set(s.step, s);
        },
      });
      assert.deepEqual(
        full.evals.map((e) => e.step),
        [0, 7, 14, 16],
      );
      assert.equal(checkpoints.size, N);

      // 7: right after an eval and an epoch boundary; 5: mid-epoch; 15: one step before the end; 16: the end.
      for (const k of [5, 7, 15, 16]) {
        const resumed = await train(cfg, data, { masks, resumeFrom: throughStore(checkpoints.get(k)!) });
        assertStatesIdentical(resumed.state, full.state, `resume from ${k}`);
        assert.deepEqual(resumed.final, full.final, `resume from ${k}: final metrics`);
      }
    });
  }
}

test('an aborted run resumed from its last checkpoint ends bit-identical', async () => {
  await selectBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  const cfg = config(OPTIMIZERS[1]!);
  const data = { train: trainData, test: testData };
  const full = await train(cfg, data, {});

  const ac = new AbortController();
  let stored: TrainState | null = null;
  await assert.rejects(
    train(cfg, data, {
      checkpointEvery: 3,
      onCheckpoint: async (s) => {
        stored = throughStore(s);
        if (s.step === 6) {
          // The checkpoint is the caller's copy: scribbling on it must not disturb the run or the stored one.
          s.weights['fc1.weight']!.data.fill(42);
          s.optimizer['m/fc1.weight']!.data.fill(42);
          s.evals.length = 0;
          ac.abort(new Error('worker killed'));
        }
      },
      signal: ac.signal,
    }),
    (e: Error) => e.name === 'AbortError' && /step 6/.test(e.message),
  );
  assert.equal(stored!.step, 6);
  const resumed = await train(cfg, data, { resumeFrom: stored! });
  assertStatesIdentical(resumed.state, full.state, 'resume after abort');
});

test('resume checks that the state belongs to the run', async () => {
  await selectBackend({ prefer: 'wasm', threads: 1, log: () => {} });
  const cfg = config(OPTIMIZERS[0]!);
  const data = { train: trainData, test: testData };
  let at4: TrainState | null = null;
  await train({ ...cfg, iterations: 4 }, data, {
    checkpointEvery: 4,
    onCheckpoint: async (s) => {
      at4 = s;
    },
  });
  const s = at4!;
  await assert.rejects(
    train({ ...cfg, seed: 12 }, data, { resumeFrom: s }),
    /rng\.seed is 11, this config\/data implies 12/,
  );
  await assert.rejects(train({ ...cfg, batchSize: 8 }, data, { resumeFrom: s }), /rng\.batchSize/);
  await assert.rejects(
    train({ ...cfg, iterations: 3 }, data, { resumeFrom: s }),
    /past the run's 3 iterations/,
  );
  await assert.rejects(
    train({ ...cfg, optimizer: OPTIMIZERS[1]! }, data, { resumeFrom: s }),
    (e: Error) => e instanceof MlInputError && /momentum\/fc1\.weight/.test(e.message),
  );
  // A mask that does not match the trained weights is caught.
  await assert.rejects(train(cfg, data, { resumeFrom: s, masks: masksFor(9) }), /non-zero weight where mask/);
});

test('stateFromTensors validates and names the bad field', () => {
  const w = getModel('lenet-300-100').init(1);
  const good: TrainState = {
    step: 3,
    weights: w,
    optimizer: {},
    rng: { version: 1, order: 'epochOrder', seed: 1, trainSize: 100, batchSize: 16, epoch: 0, position: 48 },
    evals: [{ step: 0, testLoss: NaN, testAccuracy: 0.1 }],
    lastLoss: Infinity,
  };
  const { tensors, metadata } = stateToTensors(good);
  const back = stateFromTensors(tensors, metadata);
  assert.ok(Number.isNaN(back.evals[0]!.testLoss), 'NaN survives');
  assert.equal(back.lastLoss, Infinity);
  const bad = (patch: Record<string, string | undefined>, re: RegExp) => {
    const m: Record<string, string> = { ...metadata };
    for (const [k, v] of Object.entries(patch)) {
      if (v === undefined) delete m[k];
      else m[k] = v;
    }
    assert.throws(
      () => stateFromTensors(tensors, m),
      (e: Error) => e instanceof MlInputError && re.test(e.message),
    );
  };
  bad({ format: 'something-else' }, /metadata\.format/);
  bad({ step: '-1' }, /metadata\.step/);
  bad({ step: '1.5' }, /metadata\.step/);
  bad({ step: undefined }, /metadata\.step is missing/);
  bad({ rng: '{"version":1}' }, /metadata\.rng: .*order/);
  bad({ rng: 'not json' }, /metadata\.rng is not JSON/);
  bad({ evals: '[{"step":0,"testLoss":"x","testAccuracy":1}]' }, /metadata\.evals: 0\.testLoss/);
  bad({ evals: '[{"step":9,"testLoss":1,"testAccuracy":1}]' }, /evals\[0\]\.step 9 > step 3/);
  bad({ lastLoss: 'abc' }, /metadata\.lastLoss/);
  assert.throws(
    () => stateFromTensors({ ...tensors, stray: w['fc1.bias']! }, metadata),
    /tensor 'stray' is neither/,
  );
  assert.throws(
    () =>
      stateFromTensors(
        { ...tensors, 'weights/fc1.bias': { dtype: 'float32', shape: [3], data: new Float32Array(2) } },
        metadata,
      ),
    /weights\/fc1\.bias.*needs 3 elements/,
  );
});
