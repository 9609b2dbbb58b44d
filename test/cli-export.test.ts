// `lth export` as a user runs it, against the real MinIO: a run's final weights, a distillation student's (its
// configuration read from its run), an IMP level's weights (no model in the header: found by shape) and a checkpoint
// (a whole training state) each become a local safetensors file in PyTorch's layout whose values come back to the
// stored ones exactly; an object that is no model's parameters, or a --model that does not fit, is refused.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { publishTrainRun } from '../activities/run-records';
import { endpointsToEnv } from '../infra/endpoints';
import { fromTorch } from '../ml/export';
import { getModel, VIT_TINY, vitModel, type ModelDef } from '../ml/models';
import { hostBytesEqual, hostTensor, type HostTensor, type NamedTensors } from '../ml/tensors';
import { stateToTensors, type TrainConfig, type TrainState } from '../ml/train';
import { checkpointKey, decodeSafetensors, levelTensorKey } from '../store';
import { openStore } from '../workers/connection';
import { lthRunner, ok } from './support/cli';
import { testEndpoints } from './support/env';
import { randomWeights } from './support/random-weights';

const e = testEndpoints();
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });
const store = openStore(e);
const tag = `exp${Date.now().toString(36)}`;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-cli-export-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

function state(weights: NamedTensors): TrainState {
  return { step: 12, weights, optimizer: {}, rng: { epoch: 0, next: 0 }, evals: [], lastLoss: 0.5 };
}

const final = { testLoss: 1, testAccuracy: 0.5, trainLoss: 1, trainAccuracy: 0.5 };

function config(model: string): TrainConfig {
  return {
    model,
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 },
    batchSize: 8,
    iterations: 12,
    evalEvery: 0,
    seed: 1,
  };
}

/** `lth export key -o file`, the file decoded, and its values taken back to our layout by `model`. */
async function exported(key: string, model: ModelDef, extra: string[] = []) {
  const out = path.join(tmp, `${path.basename(path.dirname(key))}-${Date.now()}.safetensors`);
  const r = ok(await lth(['export', key, '-o', out, ...extra]), `lth export ${key}`);
  const file = decodeSafetensors(new Uint8Array(fs.readFileSync(out)));
  return {
    stdout: r.stdout,
    metadata: file.metadata,
    tensors: file.tensors,
    back: fromTorch(model, file.tensors),
  };
}

function assertSameWeights(actual: NamedTensors, expected: NamedTensors): void {
  for (const [name, t] of Object.entries(expected)) {
    assert.ok(hostBytesEqual(actual[name] as HostTensor, t), name);
  }
}

test("a run's final weights: PyTorch names and layouts, the run's model in the header, the same values", async () => {
  const model = getModel('conv-2');
  const weights = randomWeights(model.params, 1);
  const run = await publishTrainRun(
    store,
    `${tag}-conv`,
    { spec: { kind: 'train' }, config: config('conv-2') },
    { result: { state: state(weights), final, evals: [] }, backend: 'cpu' },
  );
  const x = await exported(run.weights.key, model);
  assert.match(x.stdout, /conv-2, 10 tensors in PyTorch layout/);
  assert.equal(x.metadata.model, 'conv-2');
  assert.equal(x.metadata.format, 'lth.torch-state-dict.v1');
  assert.equal(x.metadata.source, run.weights.key);
  assert.equal(x.metadata.sourceSha256, run.weights.sha256);
  assert.deepEqual(x.tensors['convs.1.weight']?.shape, [64, 64, 3, 3]);
  assert.deepEqual(x.tensors['fcs.0.weight']?.shape, [256, 12544]);
  assertSameWeights(x.back, weights);
});

test("a distillation student's weights: its configuration comes from its run", async () => {
  const student = vitModel('vit-tiny', { ...VIT_TINY, distillTokens: 2, featureChannels: 64, heads: 2 });
  const weights = randomWeights(student.params, 2);
  const run = await publishTrainRun(
    store,
    `${tag}-student`,
    { spec: { kind: 'distill', student: student.config }, config: config('vit-tiny') },
    { result: { state: state(weights), final, evals: [] }, backend: 'cpu' },
  );
  const x = await exported(run.weights.key, student);
  assert.equal(x.metadata.model, 'vit-tiny');
  assert.deepEqual(JSON.parse(x.metadata.config ?? '{}'), student.config);
  assert.deepEqual(x.tensors['tokens']?.shape, [1, 3, 64]);
  assertSameWeights(x.back, weights);
});

test("an IMP level's weights (no model named) and a checkpoint's training state", async () => {
  const lenet = getModel('lenet-300-100');
  const weights = randomWeights(lenet.params, 3);
  const level = await store.putTensors(levelTensorKey(tag, 2, 'weights'), weights, {
    lineageId: tag,
    level: '2',
  });
  const x = await exported(level.key, lenet);
  assert.equal(x.metadata.model, 'lenet-300-100');
  assertSameWeights(x.back, weights);

  const cnn = getModel('cnn-teacher');
  const cnnWeights = randomWeights(cnn.params, 4);
  const { tensors, metadata } = stateToTensors({
    ...state(cnnWeights),
    optimizer: { 'momentum/fc2.bias': hostTensor('float32', [10]) },
  });
  const ckpt = await store.putTensors(checkpointKey(`${tag}-ckpt`, 12), tensors, metadata);
  const y = await exported(ckpt.key, cnn);
  assert.equal(y.metadata.model, 'cnn-teacher');
  assert.equal(y.metadata.step, '12');
  assert.equal(Object.keys(y.tensors).length, cnn.params.length, 'the weights only, no optimizer slots');
  assertSameWeights(y.back, cnnWeights);
});

test('tensors that are no model, or a --model they do not fit, are refused naming what to do', async () => {
  const odd = await store.putTensors(`experiments/${tag}/odd.safetensors`, {
    'fc1.weight': hostTensor('float32', [3, 2]),
  });
  const r = await lth(['export', odd.key, '-o', path.join(tmp, 'odd.safetensors')]);
  assert.equal(r.code, 1);
  assert.match(
    r.stderr,
    /fc1\.weight \[3, 2\]\) are not the parameters of lenet-300-100 or .*name the model with --model/,
  );
  const lenet = await store.putTensors(
    `experiments/${tag}/lenet.safetensors`,
    randomWeights(getModel('lenet-300-100').params, 5),
  );
  const wrong = await lth([
    'export',
    lenet.key,
    '--model',
    'conv-2',
    '-o',
    path.join(tmp, 'wrong.safetensors'),
  ]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /are not the parameters of conv-2/);
  const unknown = await lth([
    'export',
    lenet.key,
    '--model',
    'resnet',
    '-o',
    path.join(tmp, 'x.safetensors'),
  ]);
  assert.match(unknown.stderr, /unknown model 'resnet'/);
  assert.ok(!fs.existsSync(path.join(tmp, 'odd.safetensors')), 'nothing written on a refusal');
});
