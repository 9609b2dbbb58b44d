/**
 * What the ensemble buys (LIB-KD): the ViT student distilled from the CNN teacher, the involution teacher, both
 * (one token each, or one token on their average) and DeiT's hard distillation, against the student alone, on
 * MNIST and Fashion-MNIST, with 10% of the training split (teachers trained on that same subset) and all of it,
 * over several seeds. It runs the real system: a private embedded stack, one light worker and several compute
 * workers, one distillWorkflow per (dataset, fraction, variant, seed); teachers and their logit sets are made once
 * per (dataset, fraction) by the first distillation that needs them and reused by the rest. Then one epoch of the
 * student from stored logits against the same epoch with the teachers run online, timed in this process on the
 * same backend. Writes bench/results/distill.json.
 *
 *   node --import tsx bench/distill.ts                    # the full bench (see DEFAULTS for sizes)
 *   node --import tsx bench/distill.ts --seeds 1 --datasets mnist --fractions 0.1
 *   node --import tsx bench/distill.ts --quick            # a few-minute smoke run of this script (tiny data,
 *                                                         # written to .data/bench-distill-quick/, not bench/results)
 *
 * The stack lives in .data/bench-distill/, so an interrupted bench started again reuses every finished run.
 */
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';

import { distillObjective, studentModel } from '../activities/distill';
import { readTrainRun } from '../activities/run-records';
import { startOrAttachDistill } from '../client/runs';
import { parseDistillSpec, type DistillResult, type DistillSpecInput } from '../contract/distill';
import { trainRunId } from '../contract/ids';
import { toTrainConfig, type TrainConfigSpec } from '../contract/train';
import { REPO_ROOT } from '../infra/paths';
import { currentBackend, selectBackend } from '../ml/backend';
import { epochOrder, loadDataset, type Dataset, type DatasetName } from '../ml/data';
import { distillationTotal, type TeacherTargets } from '../ml/distill';
import { getModel } from '../ml/models';
import { fromHost } from '../ml/tensors';
import { batchTensors, Trainer } from '../ml/train';
import {
  bytesPerSample,
  LogitReader,
  readLogitManifest,
  type ArtifactStore,
  type LogitBatch,
} from '../store';
import { connectClient, openStore } from '../workers/connection';
import {
  benchCommand,
  machineInfo,
  median,
  startBenchStack,
  startBenchWorkers,
  stat,
  stopBench,
  writeResult,
} from './support';

const VARIANTS: Record<string, { teachers: ('cnn' | 'involution')[]; kd: DistillSpecInput['kd'] }> = {
  student: { teachers: [], kd: { mode: 'none' } },
  cnn: { teachers: ['cnn'], kd: { mode: 'tokens', temperature: 1 } },
  involution: { teachers: ['involution'], kd: { mode: 'tokens', temperature: 1 } },
  'both-tokens': { teachers: ['cnn', 'involution'], kd: { mode: 'tokens', temperature: 1 } },
  'both-average': { teachers: ['cnn', 'involution'], kd: { mode: 'average', temperature: 1 } },
  'deit-hard': { teachers: ['cnn'], kd: { mode: 'deit-hard', alpha: 0.5 } },
  // The review's feature-based family on top of the CNN token: patch tokens regress onto the teacher's 7×7×64 map.
  'cnn-features': {
    teachers: ['cnn'],
    kd: { mode: 'tokens', temperature: 1, features: { teacher: 'cnn', weight: 1 } },
  },
};

function log(msg: string): void {
  process.stderr.write(`[bench/distill] ${msg}\n`);
}

interface Sizes {
  teacherEpochs: number;
  /** Student epochs on the full split and on the 10% subset (the same number of steps would starve neither). */
  studentEpochs: { full: number; scarce: number };
  batchSize: number;
  testLimit?: number;
  /** Overrides trainLimit (the quick run). */
  trainLimit?: number;
  iterations?: number;
}

function teacherTrain(
  model: 'cnn-teacher' | 'involution-teacher',
  dataset: DatasetName,
  trainLimit: number | undefined,
  s: Sizes,
): TrainConfigSpec {
  return {
    model,
    dataset,
    optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    batchSize: 128,
    ...(s.iterations !== undefined ? { iterations: s.iterations } : { epochs: s.teacherEpochs }),
    evalEvery: 500,
    seed: 0,
    ...(trainLimit !== undefined ? { trainLimit } : {}),
    ...(s.testLimit !== undefined ? { testLimit: s.testLimit } : {}),
  };
}

function distillSpec(
  dataset: DatasetName,
  fraction: number,
  variant: string,
  seed: number,
  s: Sizes,
  quick: boolean,
): DistillSpecInput {
  const v = VARIANTS[variant];
  if (!v) throw new Error(`unknown variant ${variant}`);
  const trainLimit = s.trainLimit ?? (fraction >= 1 ? undefined : Math.round(60_000 * fraction));
  const teacher = (name: 'cnn' | 'involution') => ({
    name,
    train: teacherTrain(name === 'cnn' ? 'cnn-teacher' : 'involution-teacher', dataset, trainLimit, s),
    format: 'float16' as const,
  });
  return {
    // One label per (dataset, fraction): `lth report bench-distill-mnist-0.1` tables its variants over seeds.
    experiment: `bench-distill${quick ? '-quick' : ''}-${dataset}-${fraction}`,
    teachers: v.teachers.map(teacher),
    kd: v.kd,
    train: {
      model: 'vit-tiny',
      dataset,
      optimizer: { kind: 'adam', lr: 1e-3 },
      batchSize: s.batchSize,
      ...(s.iterations !== undefined
        ? { iterations: s.iterations }
        : { epochs: fraction >= 1 ? s.studentEpochs.full : s.studentEpochs.scarce }),
      // Every few epochs for the accuracy-by-epoch plot; a test pass over 10k images costs about half an epoch of
      // the 10% subset, so not every epoch.
      evalEvery: s.iterations ?? (fraction >= 1 ? 0 : 4 * Math.ceil((trainLimit ?? 60_000) / s.batchSize)),
      seed,
      ...(trainLimit !== undefined ? { trainLimit } : {}),
      ...(s.testLimit !== undefined ? { testLimit: s.testLimit } : {}),
    },
    checkpointEvery: 500,
    heartbeatTimeoutSeconds: 300,
  };
}

/**
 * One epoch of the student on `both-tokens` targets, read from the stored sets, then the same epoch with the
 * teachers run on every batch: the whole epoch's seconds, and the seconds spent getting the targets. The stored
 * epoch is also timed on each step engine this process can run (tape, then graph), one after the other in this
 * process: the before/after of running the student's step as one TensorFlow graph.
 */
const ENGINE_ROUNDS = 3;

async function timeEpoch(store: ArtifactStore, result: DistillResult, input: DistillSpecInput) {
  const spec = parseDistillSpec(input);
  const data: Dataset = loadDataset(spec.train.dataset, 'train', { limit: spec.train.trainLimit });
  const config = { ...toTrainConfig(spec.train, data.n), evalEvery: 0 };
  const model = studentModel(spec);
  const objective = distillObjective(spec);
  const reader = await LogitReader.open(
    store,
    result.teachers.map((t) => t.manifestKeys[0] as string),
    { dataset: spec.train.dataset, split: 'train', augmentation: { policy: 'none', seed: 0 } },
  );
  const teachers = await Promise.all(
    spec.teachers.map(async (t) => {
      if (!('train' in t)) throw new Error('bench teachers are given by their training spec');
      const run = await readTrainRun(store, trainRunId(t.train));
      if (!run) throw new Error(`teacher ${t.name} has no finished run`);
      const { tensors } = await store.getTensors(run.weights.key, { expectSha256: run.weights.sha256 });
      const def = getModel(t.train.model);
      return { def, params: Object.fromEntries(Object.entries(tensors).map(([n, h]) => [n, fromHost(h)])) };
    }),
  );
  const order = epochOrder(data.n, config.seed, 0);
  const steps = Math.ceil(data.n / config.batchSize);
  const run = async (online: boolean, engine?: 'tape' | 'graph') => {
    const asked = process.env.LTH_ENGINE;
    if (engine) process.env.LTH_ENGINE = engine;
    const trainer = new Trainer(config, data, { weights: model.init(config.seed), model, objective: 'fed' });
    if (asked === undefined) delete process.env.LTH_ENGINE;
    else process.env.LTH_ENGINE = asked;
    const ran = trainer.engineInfo;
    let targetSeconds = 0;
    const stream = online ? null : reader.batches(order, config.batchSize);
    const t0 = performance.now();
    for (let s = 0; s < steps; s++) {
      const indices = trainer.batchIndices(s);
      const a = performance.now();
      let targets: TeacherTargets[];
      if (online) {
        const { x, y } = batchTensors(model, data, indices);
        y.dispose();
        targets = teachers.map(({ def, params }) => ({
          kind: 'logits' as const,
          values: tf.tidy(() => def.forward(params, x, false)),
        }));
        await Promise.all(targets.map((t) => t.values.data()));
        x.dispose();
      } else {
        const next = await (stream as AsyncGenerator<LogitBatch>).next();
        if (next.done) throw new Error('internal: the stored stream ended early');
        const batch = next.value;
        targets = batch.teachers.map((t) => ({
          kind: t.kind,
          values: tf.tensor2d(t.values, [indices.length, t.classes]),
        }));
      }
      targetSeconds += (performance.now() - a) / 1000;
      trainer.trainStep({
        def: {
          prepare: async () => targets,
          loss: (m, p, b) =>
            distillationTotal(
              (model as typeof model).tokenLogits(p, b.x, true, b.noise),
              b.labelTensor,
              b.extras,
              objective,
            ),
          feeds: (extras) => Object.fromEntries(extras.map((t, i) => [`teacher/${i}`, t.values])),
        },
        extras: targets,
      });
      await trainer.readLoss();
      tf.dispose(targets.map((t) => t.values));
    }
    const seconds = (performance.now() - t0) / 1000;
    trainer.dispose();
    return { seconds, targetSeconds, engine: ran.name, notes: ran.notes };
  };
  const stored = await run(false);
  const online = await run(true);
  // Alternating rounds, so that a slow spell of the machine falls on both engines.
  const engines = (['tape', 'graph'] as const).map((asked) => ({
    asked,
    engine: '',
    notes: [] as string[],
    seconds: [] as number[],
    samplesPerSecond: 0,
  }));
  for (let round = 0; round < ENGINE_ROUNDS; round++) {
    for (const e of engines) {
      const r = await run(false, e.asked);
      e.engine = r.engine;
      e.notes = r.notes;
      e.seconds.push(r.seconds);
      log(`epoch on the ${e.asked} engine (ran: ${r.engine}), round ${round + 1}: ${r.seconds.toFixed(1)} s`);
    }
  }
  for (const e of engines) e.samplesPerSecond = data.n / median(e.seconds);
  teachers.forEach((t) => tf.dispose(Object.values(t.params)));
  return {
    machine: machineInfo(),
    storedSeconds: stored.seconds,
    onlineSeconds: online.seconds,
    engine: stored.engine,
    engines,
    threads: currentBackend().threads,
    readSecondsStored: stored.targetSeconds,
    teacherSecondsOnline: online.targetSeconds,
    samples: data.n,
    dataset: spec.train.dataset,
  };
}

interface PreviousResults {
  runs: {
    dataset: string;
    trainFraction: number;
    variant: string;
    epochs: number;
    testAccuracy: ReturnType<typeof stat>;
    seeds: number[];
  }[];
  backend: string;
  machine: ReturnType<typeof machineInfo>;
  epoch: Awaited<ReturnType<typeof timeEpoch>>;
  storage: Awaited<ReturnType<typeof storageOf>>;
  settings: { dataset: string; trainFraction: number; seconds: number }[];
}

/** Bytes a sample of stored targets takes: the CNN teacher's logits and its feature map, from their manifests. */
async function storageOf(store: ArtifactStore, result: DistillResult) {
  const t = result.teachers.find((x) => x.featureKeys);
  if (!t?.featureKeys) return null;
  const [logits, features] = await Promise.all([
    readLogitManifest(store, t.manifestKeys[0] as string),
    readLogitManifest(store, t.featureKeys[0] as string),
  ]);
  return {
    format: features.format,
    logitBytesPerSample: bytesPerSample(logits.format, logits.classes, logits.k),
    featureBytesPerSample: bytesPerSample(features.format, features.classes),
    featureShape: features.shape ?? [],
  };
}

async function main(): Promise<void> {
  const cli = benchCommand(
    'bench/distill',
    'The ViT student distilled from the CNN and involution teachers (each, both, DeiT hard) against the student ' +
      'alone, over datasets, training fractions and seeds, on a private stack; writes bench/results/distill.json.',
  )
    .option('--seeds <n>', 'student seeds (0..n-1)', '3')
    .option('--datasets <list>', 'comma-separated', 'fashion-mnist,mnist')
    .option('--fractions <list>', 'fractions of the training split, comma-separated', '0.1,1')
    .option('--variants <list>', 'comma-separated', Object.keys(VARIANTS).join(','))
    .option('--workers <n>', 'compute workers', String(Math.max(1, os.cpus().length)))
    .option('--quick', 'tiny data and few steps: checks the script, not the science')
    .option(
      '--epoch-only',
      "only the epoch timing (per step engine) on fashion-mnist at 0.1: one both-tokens student made for its teachers' " +
        'stored targets, not recorded as a result; the rows of earlier invocations are kept',
    )
    .parse(process.argv);
  const o = cli.opts<{
    seeds: string;
    datasets: string;
    fractions: string;
    variants: string;
    workers: string;
    quick?: boolean;
    epochOnly?: boolean;
  }>();
  const quick = o.quick === true;
  const epochOnly = o.epochOnly === true;
  const seeds = quick || epochOnly ? 1 : Number(o.seeds);
  const datasets = (quick ? 'mnist' : epochOnly ? 'fashion-mnist' : o.datasets).split(',') as DatasetName[];
  const fractions = (quick || epochOnly ? '0.1' : o.fractions).split(',').map(Number);
  const variants = epochOnly ? ['both-tokens'] : o.variants.split(',');
  for (const v of variants)
    if (!VARIANTS[v]) throw new Error(`--variants: unknown ${v} (${Object.keys(VARIANTS).join(', ')})`);
  const workerCount = Number(o.workers);
  // Sized so that the whole bench (2 datasets x 2 fractions x 6 variants x 3 seeds = 72 students) fits in about
  // three hours on a 2-core machine with two compute workers: vit-tiny trains at ~377 samples/s on one native
  // thread there (bench/results/backends.json), so ~2.2 h of students at 60k (full) and 72k (10%: 12 epochs of 6k)
  // samples each, and ~0.3 h of teachers (2 epochs each, one per dataset and fraction).
  const sizes: Sizes = quick
    ? {
        teacherEpochs: 1,
        studentEpochs: { full: 1, scarce: 1 },
        batchSize: 64,
        trainLimit: 512,
        testLimit: 200,
        iterations: 24,
      }
    : { teacherEpochs: 2, studentEpochs: { full: 1, scarce: 12 }, batchSize: 128 };

  const home = path.join(REPO_ROOT, '.data', quick ? 'bench-distill-quick' : 'bench-distill');
  const started = performance.now();
  const { opts, endpoints } = await startBenchStack(home, log);
  const workers = startBenchWorkers(home, endpoints, workerCount);
  // Ctrl-C or SIGTERM: the workers drain (a running student checkpoints), the stack stops; the next invocation
  // attaches to every started run and resumes it.
  const stop = (signal: string) => {
    log(
      `${signal}: stopping the workers (running students checkpoint) and the stack; run the bench again to resume`,
    );
    void stopBench(workers, opts).finally(() => process.exit(130));
  };
  process.once('SIGINT', () => stop('SIGINT'));
  process.once('SIGTERM', () => stop('SIGTERM'));
  const runs: {
    dataset: string;
    trainFraction: number;
    variant: string;
    epochs: number;
    seed: number;
    result: DistillResult;
  }[] = [];
  let epochTiming: Awaited<ReturnType<typeof timeEpoch>> | null = null;
  /** Wall seconds of each (dataset, fraction) in this invocation (small where its runs were found finished). */
  const settings: { dataset: string; trainFraction: number; seconds: number }[] = [];
  /** What a sample's stored targets cost, read from the manifests of a feature-distillation run. */
  let storage: Awaited<ReturnType<typeof storageOf>> = null;
  const file = quick
    ? path.join(home, 'distill-quick.json')
    : path.join(REPO_ROOT, 'bench', 'results', 'distill.json');
  // Results of other settings or variants from earlier invocations are kept: a bench of one setting adds to the file.
  const previous = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as Partial<PreviousResults>)
    : {};
  const keyOf = (r: { dataset: string; trainFraction: number; variant: string }) =>
    JSON.stringify([r.dataset, r.trainFraction, r.variant]);
  // Written after every (dataset, fraction), so a bench stopped part way keeps what it finished.
  const writeResults = () => {
    const student = getModel('vit-tiny');
    const groups = new Map<string, typeof runs>();
    for (const r of runs) groups.set(keyOf(r), [...(groups.get(keyOf(r)) ?? []), r]);
    // --epoch-only made its student for the stored targets alone: one seed is not a row.
    if (epochOnly) groups.clear();
    const measured = [...groups.values()].map((g) => ({
      dataset: g[0]!.dataset,
      trainFraction: g[0]!.trainFraction,
      variant: g[0]!.variant,
      epochs: g[0]!.epochs,
      testAccuracy: stat(g.map((r) => r.result.final.testAccuracy)),
      seeds: g.map((r) => r.seed),
    }));
    const kept = (previous.runs ?? []).filter((r) => !groups.has(keyOf(r)));
    const settingKey = (x: { dataset: string; trainFraction: number }) => `${x.dataset}/${x.trainFraction}`;
    const settingSeconds = new Map<string, (typeof settings)[number]>();
    // The longest measurement of a setting is the one that computed it (later ones attach to finished runs).
    for (const x of [...(previous.settings ?? []), ...settings]) {
      const had = settingSeconds.get(settingKey(x));
      if (!had || x.seconds > had.seconds) settingSeconds.set(settingKey(x), x);
    }
    const out = {
      // The rows' machine: an --epoch-only invocation adds no row, and its machine is in `epoch`.
      machine: epochOnly && previous.machine !== undefined ? previous.machine : machineInfo(),
      backend:
        epochOnly && previous.backend !== undefined
          ? previous.backend
          : [...new Set(runs.map((r) => r.result.backend))].join(', '),
      timingBackend: epochTiming ? currentBackend() : null,
      student: {
        config: (student as unknown as { config: unknown }).config,
        params: student.params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0),
      },
      sizes,
      runs: [...kept, ...measured].sort((a, b) => keyOf(a).localeCompare(keyOf(b))),
      epoch: epochTiming ?? previous.epoch ?? null,
      storage: storage ?? previous.storage ?? null,
      settings: epochOnly ? (previous.settings ?? []) : [...settingSeconds.values()],
      wallSeconds: (performance.now() - started) / 1000,
      notes: [
        'testAccuracy: the final test accuracy of the student (its heads averaged), mean and sample std over seeds',
        'teachers are trained on the same subset as the student (trainFraction) with seed 0, their logits stored as float16',
        "cnn-features: the cnn variant plus the patch tokens regressed (MSE, weight 1) onto the CNN teacher's last feature map, stored as float16",
        'settings: wall seconds per (dataset, fraction), the longest invocation (the one that computed it)',
        "epoch.engines: the stored-target epoch on each step engine, 3 alternating rounds in one process after a warm-up epoch, samplesPerSecond from the median; threads null is TensorFlow's default (one per core)",
        quick ? 'the --quick smoke configuration: not a result' : 'sizes: see "sizes"',
      ],
    };
    // Empty: this invocation finished no distillation (earlier invocations' rows alone are not rewritten).
    writeResult(file, out, { isEmpty: () => (epochOnly ? epochTiming === null : runs.length === 0) });
    log(`wrote ${path.relative(process.cwd(), file)} (${(out.wallSeconds / 60).toFixed(1)} min)`);
    return out;
  };
  try {
    await Promise.all(workers.map((w) => w.ready));
    const client = await connectClient(endpoints);
    try {
      for (const dataset of datasets) {
        for (const fraction of fractions) {
          // The first variant with both teachers makes the teachers' runs and sets; the rest find them.
          const order = [...variants].sort(
            (a, b) => (VARIANTS[b]?.teachers.length ?? 0) - (VARIANTS[a]?.teachers.length ?? 0),
          );
          const first = order[0] as string;
          const start = async (variant: string, seed: number) => {
            const input = distillSpec(dataset, fraction, variant, seed, sizes, quick);
            const spec = parseDistillSpec(input);
            const run = await startOrAttachDistill(client, spec);
            const result = await run.handle.result();
            const epochs = result.steps / Math.ceil((spec.train.trainLimit ?? 60_000) / spec.train.batchSize);
            log(
              `${spec.experiment} ${variant} s${seed}: test accuracy ${(100 * result.final.testAccuracy).toFixed(2)}% (${((performance.now() - started) / 60_000).toFixed(1)} min so far)`,
            );
            runs.push({ dataset, trainFraction: fraction, variant, epochs, seed, result });
            return { input, result };
          };
          const settingStarted = performance.now();
          const made = await start(first, 0);
          const rest = order
            .flatMap((v) => Array.from({ length: seeds }, (_, s) => [v, s] as const))
            .filter(([v, s]) => !(v === first && s === 0));
          // Bounded by the compute workers anyway; a few at a time keeps the history readable.
          for (let i = 0; i < rest.length; i += workerCount) {
            await Promise.all(rest.slice(i, i + workerCount).map(([v, s]) => start(v, s)));
          }
          if (!epochTiming && VARIANTS[first]?.teachers.length === 2) {
            await selectBackend({ prefer: quick ? 'wasm' : 'auto', log });
            epochTiming = await timeEpoch(openStore(endpoints), made.result, made.input);
            log(
              `epoch: stored ${epochTiming.storedSeconds.toFixed(1)} s, online ${epochTiming.onlineSeconds.toFixed(1)} s`,
            );
          }
          settings.push({
            dataset,
            trainFraction: fraction,
            seconds: (performance.now() - settingStarted) / 1000,
          });
          const withFeatures = runs.find((r) => r.result.teachers.some((t) => t.featureKeys));
          if (!storage && withFeatures) storage = await storageOf(openStore(endpoints), withFeatures.result);
          writeResults();
        }
      }
    } finally {
      await client.connection.close();
    }
  } finally {
    await stopBench(workers, opts);
  }
  const out = writeResults();
  for (const r of out.runs) {
    log(
      `${r.dataset} ${r.trainFraction} ${r.variant.padEnd(12)} ${(100 * r.testAccuracy.mean).toFixed(2)}±${(100 * r.testAccuracy.std).toFixed(2)} (n=${r.testAccuracy.n})`,
    );
  }
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
