/**
 * The teacher-logit result: the two light teachers (cnn-teacher, involution-teacher) trained on MNIST and
 * Fashion-MNIST through the durable training workflow, their logits precomputed by precomputeLogitsWorkflow on
 * a real embedded stack, and what the stored logits cost and are worth:
 *
 * - each teacher's test accuracy, computed from its stored float32 logits on the test split;
 * - precompute throughput (training-split samples per second, workflow start to manifest) per teacher and
 *   backend: the set is deleted before each timed run, so every run computes every shard;
 * - per format (float32, float16, top-k for k = 1, 3, 5): bytes per sample and the KL from the full-precision
 *   distribution to what the format gives back;
 * - one epoch of both teachers' logits read from MinIO (a shuffled order, batches of 128, through LogitReader)
 *   against both teachers run online over the same epoch.
 *
 *   npm run bench:logits                    # 2 epochs per teacher; native, WASM and cpu (~25 min on 2 cores)
 *   npm run bench:logits -- --epochs 3
 *   npm run bench:logits -- --quick         # a smoke run of this script on tiny data, written to
 *                                           # .data/bench-logits-quick/, not bench/results
 *
 * The stack lives in .data/bench-logits/: an interrupted bench started again reuses the trained teachers.
 */
import path from 'node:path';

import { logitSetKeysFor } from '../activities/logits';
import { logitSetAccuracy } from '../client/logit-sets';
import { startOrAttachPrecompute, startOrAttachTrain } from '../client/runs';
import { stackDown } from '../infra/embedded-stack';
import { endpointsToEnv } from '../infra/endpoints';
import { REPO_ROOT } from '../infra/paths';
import { selectBackend, type BackendName } from '../ml/backend';
import { imageSize, loadDataset, type DatasetName } from '../ml/data';
import { predictLogits } from '../ml/infer';
import { Rng } from '../ml/rng';
import {
  bytesPerSample,
  LogitReader,
  readLogitManifest,
  reconstructionError,
  toProbabilities,
  type ArtifactStore,
  type LogitFormat,
} from '../store';
import { connectClient, openStore } from '../workers/connection';
import { spawnWorker, stopWorker, type SpawnedWorker } from '../workers/spawn';
import { benchCommand, machineInfo, startBenchStack, writeResult } from './support';
import { parsePrecomputeSpec, type PrecomputeResult, type PrecomputeSpecInput } from '../contract/precompute';
import { parseTrainSpec, type TrainConfigSpec, type TrainSpecInput } from '../contract/train';

const TEACHERS = ['cnn-teacher', 'involution-teacher'] as const;
const DATASETS: DatasetName[] = ['mnist', 'fashion-mnist'];
/**
 * Backends timed, native last (the later steps read its sets). The pure-JS cpu backend is ~100x slower than
 * native: it labels a class-balanced subset (`samples`) so that the bench stays minutes long.
 */
const BACKENDS: { name: BackendName; samples?: number }[] = [
  { name: 'cpu', samples: 500 },
  { name: 'wasm' },
  { name: 'tensorflow' },
];
const TOP_K = [1, 3, 5];
const BATCH = 128;

function log(msg: string): void {
  process.stderr.write(`[bench/logits] ${msg}\n`);
}

type Client = Awaited<ReturnType<typeof connectClient>>;

interface Teacher {
  name: string;
  model: (typeof TEACHERS)[number];
  dataset: DatasetName;
  train: TrainConfigSpec;
}

/** Deletes a stored logit set (manifest and shards), so that the next precompute of it computes every shard. */
async function deleteLogitSet(store: ArtifactStore, manifestKey: string): Promise<number> {
  const prefix = manifestKey.slice(0, manifestKey.lastIndexOf('/') + 1);
  const objects = await store.list(prefix);
  for (const o of objects) await store.remove(o.key);
  return objects.length;
}

async function main(): Promise<void> {
  const cli = benchCommand(
    'bench/logits',
    'The light teachers trained on MNIST and Fashion-MNIST, their logits precomputed on a private stack: accuracy, ' +
      'precompute throughput, bytes and fidelity per format, stored against online; writes bench/results/logits.json.',
  )
    .option('--epochs <n>', 'training epochs per teacher', '2')
    .option('--quick', 'tiny data and few steps: checks the script, not the science')
    .parse(process.argv);
  const o = cli.opts<{ epochs: string; quick?: boolean }>();
  const epochs = Number(o.epochs);
  if (!Number.isInteger(epochs) || epochs < 1) throw new Error('--epochs must be a positive integer');
  const quick = o.quick === true;
  // --quick: a class-balanced subset for everything the teachers see or label.
  const trainLimit = quick ? 2000 : undefined;
  const testLimit = quick ? 500 : undefined;
  const shardSize = quick ? 500 : 10_000;

  const teachers: Teacher[] = DATASETS.flatMap((dataset) =>
    TEACHERS.map((model) => ({
      name: `${model}-${dataset}`,
      model,
      dataset,
      train: parseTrainSpec({
        experiment: 'bench-logits',
        train: {
          model,
          dataset,
          optimizer: { kind: 'adam', lr: 1e-3 },
          batchSize: quick ? 64 : BATCH,
          ...(quick ? { iterations: 40, trainLimit, testLimit } : { epochs }),
          evalEvery: quick ? 20 : 469,
          seed: 0,
        },
      } satisfies TrainSpecInput).train,
    })),
  );
  const precomputeSpec = (
    t: Teacher,
    experiment: string,
    extra: Partial<PrecomputeSpecInput> = {},
  ): ReturnType<typeof parsePrecomputeSpec> =>
    parsePrecomputeSpec({
      experiment,
      teacher: { name: t.name, train: t.train },
      split: 'train',
      ...(trainLimit ? { limit: trainLimit } : {}),
      format: 'float16',
      shardSize,
      parallelism: 2,
      heartbeatTimeoutSeconds: 120,
      ...extra,
    } satisfies PrecomputeSpecInput);

  const home = path.join(REPO_ROOT, '.data', quick ? 'bench-logits-quick' : 'bench-logits');
  const started = performance.now();
  const { opts, endpoints } = await startBenchStack(home, log);
  const env = { ...endpointsToEnv(endpoints), LTH_PROGRESS_INTERVAL_MS: '10000' };
  const store = openStore(endpoints);
  const workers: SpawnedWorker[] = [];
  const computeWorker = async (backend: BackendName): Promise<SpawnedWorker> => {
    const w = spawnWorker('compute', {
      env,
      args: ['--backend', backend],
      logFile: path.join(home, 'logs', `compute-${backend}.log`),
    });
    workers.push(w);
    await w.ready;
    return w;
  };
  const retire = async (w: SpawnedWorker): Promise<void> => {
    await stopWorker(w, 30_000);
    workers.splice(workers.indexOf(w), 1);
  };

  const trained = new Map<
    string,
    { testAccuracy: number; backend: string; reused: boolean; weights: { key: string; sha256: string } }
  >();
  const weightsOf = (t: Teacher): { key: string; sha256: string } => {
    const w = trained.get(t.name)?.weights;
    if (!w) throw new Error(`${t.name}: no finished training run`);
    return w;
  };
  // Sample counts per (dataset, limit), so that each split is loaded once for them, not once per backend.
  const sampleCounts = new Map<string, number>();
  const sampleCount = (dataset: DatasetName, limit: number | undefined): number => {
    const key = `${dataset}/${limit ?? 'all'}`;
    let n = sampleCounts.get(key);
    if (n === undefined) {
      n = loadDataset(dataset, 'train', { limit }).n;
      sampleCounts.set(key, n);
    }
    return n;
  };
  const throughput = new Map<string, Record<string, { samples: number; seconds: number; perSec: number }>>();
  const testSets = new Map<string, string>();
  const formatSets = new Map<string, { format: LogitFormat; k?: number; manifestKey: string }[]>();
  let client: Client | null = null;
  try {
    workers.push(spawnWorker('light', { env, logFile: path.join(home, 'logs', 'light.log') }));
    await workers[0]?.ready;
    client = await connectClient(endpoints);
    const c = client;
    const precompute = async (spec: ReturnType<typeof parsePrecomputeSpec>): Promise<PrecomputeResult> => {
      const run = await startOrAttachPrecompute(c, spec);
      return run.handle.result();
    };

    // 1. The teachers: ordinary durable training runs (a finished one is reused).
    let worker = await computeWorker('tensorflow');
    for (const t of teachers) {
      const run = await startOrAttachTrain(c, parseTrainSpec({ experiment: 'bench-logits', train: t.train }));
      log(`${t.name}: ${run.started ? 'training' : 'attached to'} ${run.workflowId}`);
      const r = await run.handle.result();
      trained.set(t.name, {
        testAccuracy: r.final.testAccuracy,
        backend: r.backend,
        reused: r.reused,
        weights: r.weights,
      });
      log(`${t.name}: test accuracy ${(100 * r.final.testAccuracy).toFixed(2)}% (${r.backend})`);
    }
    await retire(worker);

    // 2. Precompute throughput per backend, each run from an empty set. Native runs last, so that the float16
    //    sets the later steps read are the native ones.
    const stamp = new Date().toISOString().replace(/[-:]/g, '').slice(0, 15);
    for (const { name: backend, samples: subset } of BACKENDS) {
      worker = await computeWorker(backend);
      for (const t of teachers) {
        const limit =
          subset !== undefined ? Math.min(subset / (quick ? 5 : 1), trainLimit ?? Infinity) : trainLimit;
        const spec = precomputeSpec(t, `bench-logits-${stamp}-${backend}`, limit ? { limit } : {});
        const removed = await deleteLogitSet(
          store,
          logitSetKeysFor(spec, weightsOf(t).sha256, sampleCount(t.dataset, limit)).manifestKey,
        );
        const t0 = performance.now();
        const r = await precompute(spec);
        const seconds = (performance.now() - t0) / 1000;
        if (r.reused || r.computedShards !== r.shards.length)
          throw new Error(
            `${t.name}: the timed precompute on ${backend} reused stored shards; not a measurement`,
          );
        const perSec = r.sampleCount / seconds;
        throughput.set(t.name, {
          ...throughput.get(t.name),
          [backend]: { samples: r.sampleCount, seconds, perSec },
        });
        log(
          `${t.name} on ${backend}: ${r.sampleCount} samples in ${seconds.toFixed(1)} s = ${perSec.toFixed(0)}/s ` +
            `(${r.computedShards} shards; ${removed} objects deleted first)`,
        );
      }
      if (backend !== 'tensorflow') await retire(worker);
    }

    // 3. Test-split float32 logits (the accuracy from stored outputs), and every format of the MNIST teachers.
    for (const t of teachers) {
      const test = await precompute(
        precomputeSpec(t, 'bench-logits', {
          split: 'test',
          format: 'float32',
          ...(testLimit ? { limit: testLimit } : {}),
        }),
      );
      testSets.set(t.name, test.manifestKey);
      if (t.dataset !== 'mnist') continue;
      const sets: { format: LogitFormat; k?: number; manifestKey: string }[] = [];
      for (const f of [
        { format: 'float32' as const },
        { format: 'float16' as const },
        ...TOP_K.map((k) => ({ format: 'top-k' as const, k })),
      ]) {
        const r = await precompute(precomputeSpec(t, 'bench-logits', f));
        sets.push({ ...f, manifestKey: r.manifestKey });
      }
      formatSets.set(t.name, sets);
      log(`${t.name}: test-split and format sets stored`);
    }
    await retire(worker);
  } finally {
    await client?.connection.close();
    await Promise.all(workers.map((w) => stopWorker(w, 30_000)));
  }

  let result: Record<string, unknown>;
  try {
    // 4. Accuracy from stored logits, format fidelity, and the epoch comparison, in this process, workers gone.
    const teacherRows = [];
    for (const t of teachers) {
      const key = testSets.get(t.name) as string;
      const m = await readLogitManifest(store, key);
      const acc = await logitSetAccuracy(store, key, m);
      const tp = throughput.get(t.name) ?? {};
      teacherRows.push({
        name: t.model,
        dataset: t.dataset,
        testAccuracy: acc.correct / acc.total,
        testSamples: acc.total,
        trainingRunTestAccuracy: trained.get(t.name)?.testAccuracy ?? null,
        trainedOn: trained.get(t.name)?.backend ?? null,
        precomputeSamplesPerSec: tp.tensorflow?.perSec ?? null,
        precomputeByBackend: tp,
      });
    }

    const formatRows = [];
    for (const [name, sets] of formatSets) {
      const full = sets.find((s) => s.format === 'float32') as { manifestKey: string };
      const fullProbs = await readAllProbabilities(store, full.manifestKey);
      for (const s of sets) {
        const m = await readLogitManifest(store, s.manifestKey);
        const err = reconstructionError(
          fullProbs,
          await readAllProbabilities(store, s.manifestKey),
          m.classes,
        );
        const storedBytes = m.shards.reduce((a, x) => a + x.bytes, 0);
        formatRows.push({
          format: s.format === 'top-k' ? `top-${s.k}` : s.format,
          ...(s.k !== undefined ? { k: s.k } : {}),
          teacher: name,
          bytesPerSample: bytesPerSample(s.format, m.classes, s.k),
          storedBytesPerSample: storedBytes / m.sampleCount,
          klToFull: err.meanKl,
          klToFullMax: err.maxKl,
          samples: err.rows,
        });
      }
    }

    const epochSets = [...formatSets].map(([name, sets]) => ({
      teacher: teachers.find((t) => t.name === name) as Teacher,
      weights: weightsOf(teachers.find((t) => t.name === name) as Teacher),
      manifestKey: (sets.find((s) => s.format === 'float16') as { manifestKey: string }).manifestKey,
    }));
    const epoch = await epochComparison(store, epochSets, trainLimit);
    result = {
      machine: machineInfo(),
      backend: 'tensorflow',
      teachers: teacherRows,
      formats: formatRows,
      epoch,
      setup: {
        training: quick
          ? 'the --quick smoke configuration'
          : `Adam 1e-3, batch ${BATCH}, ${epochs} epochs, seed 0`,
        precompute: `training split, shards of ${shardSize}, parallelism 2, one compute worker with one slot`,
        quick,
      },
      wallSeconds: (performance.now() - started) / 1000,
      notes: [
        'testAccuracy: argmax of the stored float32 logits on the test split against its labels (trainingRunTestAccuracy: the training run evaluation of the same weights)',
        'precomputeSamplesPerSec: training-split samples / seconds from workflow start to published manifest, native TensorFlow (precomputeByBackend: every backend; cpu labels a 500-sample class-balanced subset), the set deleted before each timed run',
        'bytesPerSample: payload per sample of the format; storedBytesPerSample: shard objects (headers included) / samples',
        'klToFull: mean over the training split of KL(softmax(float32 logits) || distribution the format gives back), nats; top-k spreads the leftover probability evenly',
        'epoch: both MNIST teachers; readFromStoreSeconds reads their float16 sets from MinIO on this machine (loopback) in a seeded shuffled order; teachersOnlineSeconds runs both teachers forward over the same samples',
      ],
    };
  } finally {
    await stackDown(opts);
  }
  const file = quick
    ? path.join(home, 'logits-quick.json')
    : path.join(REPO_ROOT, 'bench', 'results', 'logits.json');
  // Empty: no teacher measured.
  writeResult(file, result, { isEmpty: (r) => !Array.isArray(r.teachers) || r.teachers.length === 0 });
  log(
    `wrote ${path.relative(process.cwd(), file)} (${((performance.now() - started) / 60_000).toFixed(1)} min)`,
  );
}

/** Every row of a stored set as probabilities, in sample order. */
async function readAllProbabilities(store: ArtifactStore, manifestKey: string): Promise<Float32Array> {
  const m = await readLogitManifest(store, manifestKey);
  const reader = await LogitReader.open(store, [manifestKey], m);
  try {
    const out = new Float32Array(m.sampleCount * m.classes);
    for await (const batch of reader.contiguousBatches(m.shardSize)) {
      const rows = batch.teachers[0] as NonNullable<(typeof batch.teachers)[0]>;
      out.set(toProbabilities(rows), (batch.indices[0] as number) * m.classes);
    }
    return out;
  } finally {
    await reader.close();
  }
}

/**
 * One epoch of the MNIST training split for both teachers: their float16 logits read from the store in a
 * shuffled order, against running both teachers forward over the same order on native TensorFlow.
 */
async function epochComparison(
  store: ArtifactStore,
  sets: { teacher: Teacher; weights: { key: string; sha256: string }; manifestKey: string }[],
  trainLimit: number | undefined,
): Promise<Record<string, unknown>> {
  const data = loadDataset('mnist', 'train', { limit: trainLimit });
  const order = new Rng(2026).permutation(data.n);
  const keys = sets.map((s) => s.manifestKey);
  const identity = { dataset: 'mnist', split: 'train', augmentation: { policy: 'none', seed: 0 } };
  const t0 = performance.now();
  const reader = await LogitReader.open(store, keys, identity);
  let rows = 0;
  try {
    for await (const batch of reader.batches(order, BATCH)) rows += batch.indices.length;
  } finally {
    await reader.close();
  }
  const readFromStoreSeconds = (performance.now() - t0) / 1000;
  const readStats = reader.stats();

  const backend = await selectBackend({ prefer: 'tensorflow', log });
  const weights = [];
  for (const s of sets) {
    const { tensors } = await store.getTensors(s.weights.key, { expectSha256: s.weights.sha256 });
    weights.push({ model: s.teacher.model, weights: tensors });
  }
  const t1 = performance.now();
  // The student's batches in the epoch's order, gathered once (a student's input pipeline does that anyway).
  const images = new Float32Array(data.images.length);
  const size = imageSize(data);
  for (let i = 0; i < order.length; i++) {
    const src = (order[i] as number) * size;
    images.set(data.images.subarray(src, src + size), i * size);
  }
  for (const w of weights) await predictLogits(w.model, w.weights, images, { batchSize: BATCH });
  const teachersOnlineSeconds = (performance.now() - t1) / 1000;
  log(
    `epoch of ${data.n} samples, both teachers: read from store ${readFromStoreSeconds.toFixed(2)} s, ` +
      `online ${teachersOnlineSeconds.toFixed(2)} s (${backend.name})`,
  );
  return {
    samples: data.n,
    teachers: sets.map((s) => s.teacher.model),
    batchSize: BATCH,
    readFromStoreSeconds,
    readFromStore: { rows, bytes: readStats.fetchedBytes, shardDownloads: readStats.fetched },
    teachersOnlineSeconds,
    teachersOnlineBackend: `${backend.name}${backend.threads ? `/${backend.threads}t` : ''}`,
    speedup: teachersOnlineSeconds / readFromStoreSeconds,
  };
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
