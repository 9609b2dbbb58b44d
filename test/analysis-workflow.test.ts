// The geometry analysis end to end on the real Temporal server and MinIO: a tiny LeNet-300-100 lottery (levels
// 0..2), then `lth analyze` measures every stored level (small options), the results are content-addressed in the
// store and equal a recomputation here, a second analysis reuses every stored measure, and bad input is refused
// naming the field before anything runs.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { startOrAttachLottery } from '../client/runs';
import { branchWorkflowId } from '../contract/branches';
import { lotteryWorkflowId } from '../contract/ids';
import type { analyzeWorkflow } from '../workflows/analysis';
import type { AnalysisResult } from '../contract/analysis';
import { parseLotterySpec } from '../contract/lottery';
import { endpointsToEnv } from '../infra/endpoints';
import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { flatten, modelObjective } from '../ml/geometry';
import { getModel } from '../ml/models';
import { hostBytesEqual } from '../ml/tensors';
import { openStore } from '../workers/connection';
import { lthRunner, ok } from './support/cli';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { useTestWorkers } from './support/workers';

const e = testEndpoints();
const tag = `geo${Date.now().toString(36)}`;
const workers = useTestWorkers(e);
const lth = lthRunner({ ...process.env, ...endpointsToEnv(e) });
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-analysis-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const spec = parseLotterySpec({
  experiment: tag,
  train: tinyLenetTrain(6, { iterations: 40, evalEvery: 20 }),
  levels: 2,
  pruning: { kind: 'global-magnitude', fraction: 0.5 },
  rewind: { step: 10 },
  checkpointEvery: 20,
});

// Small enough for a test: every measure, a few points and draws each.
const config = {
  subset: { train: 60, test: 50 },
  batchSize: 40,
  seed: 3,
  // Error bars over two disjoint subsets, one probe seed each (the default 2 × 3 costs three times this).
  replicates: { seeds: 1, subsets: 2 },
  options: {
    slice1d: { points: 5 },
    slice2d: { points: 3 },
    path: { points: 5 },
    hessian: { k: 2, maxIterations: 8 },
    trace: { samples: 4 },
    sharpness: { steps: 3 },
    'pac-bayes': { samples: 2 },
    basin: { directions: 2 },
  },
};

test('lth analyze measures every stored level, stores each measure once, and reuses them', async () => {
  const lottery = await startOrAttachLottery(workers.client, spec);
  const levels = (await lottery.handle.result()).levels;
  const file = path.join(tmp, 'analysis.json');
  fs.writeFileSync(file, JSON.stringify(config));

  const first = ok(await lth(['analyze', tag, '--config', file, '--json'], 240_000), 'lth analyze');
  const result = JSON.parse(first.stdout) as AnalysisResult;
  assert.deepEqual(
    result.targets.map((t) => [t.label, t.level]),
    [
      ['trunk', 0],
      ['trunk', 1],
      ['trunk', 2],
    ],
  );
  for (const t of result.targets) {
    const names = t.measures.map((m) => m.measure);
    // The path to the previous level exists from level 1 on.
    assert.deepEqual(names, [
      'loss',
      'slice1d',
      'slice2d',
      ...(t.level > 0 ? ['path'] : []),
      'rewind-path',
      'hessian',
      'trace',
      'sharpness',
      'pac-bayes',
      'basin',
      'descriptors',
    ]);
    const s = (m: string) => t.measures.find((x) => x.measure === m)?.summary ?? {};
    assert.ok((s('loss').testError ?? -1) >= 0 && (s('loss').testError ?? 2) <= 1);
    assert.ok(Number.isFinite(s('hessian').topEigenvalue), 'λmax');
    // Error bars over the two subsets; the loss (not replicated) has none.
    for (const m of ['hessian', 'trace', 'sharpness', 'pac-bayes', 'basin']) {
      const key = Object.keys(s(m)).find((k) => !k.includes('.'));
      assert.equal(s(m)[`${key}.n`], 2, `${m}.${key}.n`);
    }
    assert.equal(s('loss')['testError.n'], undefined);
    assert.ok(Number.isFinite(s('hessian')['topEigenvalue.fc1.weight']), 'per-layer λmax');
    assert.ok(Number.isFinite(s('trace').trace) && (s('trace').traceStandardError ?? -1) >= 0);
    assert.ok((s('sharpness').epsSharpness ?? -1) >= 0);
    assert.ok((s('pac-bayes').pacBayesSigma ?? 0) > 0);
    assert.ok(Number.isFinite(s('basin').logVolume));
    assert.equal(s('descriptors').freeParameters, levels[t.level]!.remaining + 300 + 100 + 10);
    for (const m of t.measures) assert.equal(m.reused, false, `${m.measure} computed the first time`);
  }

  // The stored loss is what the same objective gives here, on the workers' backend, bit for bit.
  await selectBackend({ prefer: 'wasm', log: () => {} });
  const store = openStore(e);
  const level1 = levels[1]!;
  const masks = (await store.getTensors(level1.mask.key)).tensors;
  const weights = (await store.getTensors(level1.weights.key)).tensors;
  const model = getModel('lenet-300-100');
  const objective = modelObjective(model, loadDataset('mnist', 'test', { limit: 50 }), {
    masks,
    batchSize: 40,
  });
  const here = await objective.value(flatten(objective.space, weights));
  objective.dispose();
  const stored = result.targets[1]!.measures.find((m) => m.measure === 'loss')!;
  assert.equal(stored.summary.testLoss, here.loss);
  assert.equal(stored.summary.testError, here.error);
  assert.ok(await store.exists(stored.resultKey));
  assert.ok(await store.exists(stored.arraysKey));

  // lth report gains the geometry: a row per level, a plot per measure.
  const reportDir = path.join(tmp, 'report');
  ok(await lth(['report', tag, '--format', 'svg', '-o', reportDir, '--no-upload'], 120_000), 'lth report');
  const md = fs.readFileSync(path.join(reportDir, 'report.md'), 'utf8');
  assert.match(md, /## Geometry/);
  assert.match(
    md,
    /\| run \| level \| % remaining \| train loss \| test loss \| test error \| λmax \| trace \|/,
  );
  assert.match(md, /\| trunk \| 2 \| 25\.3 \|/);
  assert.ok(fs.existsSync(path.join(reportDir, 'geometry-hessian-topEigenvalue.svg')));
  assert.match(md, /!\[geometry-hessian-topEigenvalue\.svg\]/);
  for (const f of ['slices-1d.svg', 'contour-trunk-L0.svg', 'contour-trunk-L1.svg', 'contour-trunk-L2.svg']) {
    assert.ok(fs.existsSync(path.join(reportDir, f)), f);
  }

  // Another analysis of the same levels (another parallelism: another workflow) measures nothing again.
  const again = ok(
    await lth(['analyze', tag, '--config', file, '--parallelism', '3', '--levels', '1,2', '--json'], 120_000),
    'lth analyze again',
  );
  const reused = JSON.parse(again.stdout) as AnalysisResult;
  assert.equal(reused.targets.length, 2);
  for (const t of reused.targets)
    for (const m of t.measures) assert.equal(m.reused, true, `${t.level} ${m.measure}`);
  assert.deepEqual(
    reused.targets[0]!.measures,
    result.targets[1]!.measures.map((m) => ({ ...m, reused: true, seconds: 0 })),
  );
});

test("a lottery spec's analysis section measures every finished level as a child workflow, trunk and branch", async () => {
  const withAnalysis = parseLotterySpec({
    ...spec,
    experiment: `${tag}-a`,
    levels: 1,
    branches: [
      { kind: 'reinit', seed: 2 },
      { kind: 'twin', seed: 1 },
    ],
    analysis: { ...config, measures: ['loss', 'path', 'hessian'] },
  });
  const run = await startOrAttachLottery(workers.client, withAnalysis);
  const result = await run.handle.result();
  const trunkId = lotteryWorkflowId(withAnalysis);
  const child = (id: string) => workers.client.workflow.getHandle<typeof analyzeWorkflow>(id).result();
  const [l0, l1, b1] = await Promise.all([
    child(`${trunkId}.analysis-level-0`),
    child(`${trunkId}.analysis-level-1`),
    child(`${branchWorkflowId(trunkId, withAnalysis.branches[0]!)}.analysis-level-1`),
  ]);
  assert.deepEqual(
    [l0, l1, b1].map((r) => [
      r.targets[0]!.label,
      r.targets[0]!.level,
      r.targets[0]!.measures.map((m) => m.measure),
    ]),
    [
      ['trunk', 0, ['loss', 'hessian']],
      ['trunk', 1, ['loss', 'path', 'hessian']],
      ['reinit-s2', 1, ['loss', 'hessian']],
    ],
  );
  // The same stored level the lottery reports, the same numbers `lth analyze` computes for it.
  assert.equal(l1.targets[0]!.remainingPct, result.levels[1]!.remainingPct);

  // The twin: the ticket's masks and rewind point, another data order; `lth analyze` pairs it with the trunk level.
  const twin = result.branches.find((b) => b.label === 'twin-s1')!;
  const ticket = result.levels[1]!;
  const store = openStore(e);
  const [twinMask, ticketMask] = await Promise.all(
    [twin.levels[0]!.mask, ticket.mask].map(async (ref) => (await store.getTensors(ref.key)).tensors),
  );
  for (const name of Object.keys(ticketMask!)) {
    assert.ok(hostBytesEqual(twinMask![name]!, ticketMask![name]!), `the same mask: ${name}`);
  }
  assert.equal(twin.levels[0]!.startStep, ticket.startStep, 'from the same rewind point');
  assert.notEqual(
    twin.levels[0]!.weights.sha256,
    ticket.weights.sha256,
    'another data order, another solution',
  );
  const file = path.join(tmp, 'twin.json');
  fs.writeFileSync(file, JSON.stringify({ ...config, measures: ['loss', 'twin-path'] }));
  const analyzed = JSON.parse(
    ok(await lth(['analyze', `${tag}-a`, '--config', file, '--json'], 120_000), 'lth analyze twin').stdout,
  ) as AnalysisResult;
  assert.deepEqual(
    JSON.parse(
      JSON.stringify(analyzed.targets.map((t) => [t.label, t.level, t.measures.map((m) => m.measure)])),
    ),
    [
      ['trunk', 0, ['loss']],
      ['trunk', 1, ['loss', 'twin-path']],
    ],
  );
  const barrier = analyzed.targets[1]!.measures[1]!.summary;
  assert.ok(Number.isFinite(barrier.testLossBarrier) && Number.isFinite(barrier.testErrorBarrier));
});

test('bad analysis input is refused naming the field, before anything runs', async () => {
  const measures = await lth(['analyze', tag, '--measures', 'hessian,curvature']);
  assert.equal(measures.code, 1);
  assert.match(measures.stderr, /config\.measures\.1: Invalid option/);
  const levels = await lth(['analyze', tag, '--levels', '9']);
  assert.equal(levels.code, 1);
  assert.match(
    levels.stderr,
    /--levels: no finished level of .* matches 9; finished: trunk 0, trunk 1, trunk 2/,
  );
  const file = path.join(tmp, 'bad.json');
  fs.writeFileSync(file, JSON.stringify({ options: { slice2d: { points: 500 } } }));
  const grid = await lth(['analyze', tag, '--config', file]);
  assert.equal(grid.code, 1);
  assert.match(grid.stderr, /config\.options\.slice2d\.points: Too big/);
  const nobody = await lth(['analyze', `${tag}-none`]);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /no lottery experiment/);
});
