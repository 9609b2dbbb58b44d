/**
 * Where a training step's time goes, per model, on one backend (default native TensorFlow, 1 thread; batch 128,
 * SGD with momentum as bench/backends.ts): the kernels one step runs (how many, of which kind, their summed time),
 * the step's wall time, the rest (JavaScript outside the kernels: the tape, gradient functions, tidy bookkeeping,
 * optimizer and mask handling), the tensors it allocates, and the cost of dispatching one trivial op. Writes
 * bench/results/profile.json; ml/README.md reads it.
 *
 *   node --import tsx bench/profile.ts                      # every model, native, 1 thread
 *   node --import tsx bench/profile.ts --backend wasm --models lenet-300-100
 */
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';

import { REPO_ROOT } from '../infra/paths';
import { selectBackend, type BackendName } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { MODEL_NAMES } from '../ml/models/names';
import { Trainer, type TrainConfig } from '../ml/train';
import { benchCommand, benchOptimizer, machineInfo, median, writeResult } from './support';

const BATCH = 128;
const WARMUP = 5;
const TIMED = 15;
const PROFILED = 3;

/** µs to dispatch one trivial op (a one-element add) and free its output: the floor under every kernel call. */
function dispatchMicros(): number {
  const a = tf.scalar(1);
  const b = tf.scalar(2);
  const rounds: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let i = 0; i < 2000; i++) tf.add(a, b).dispose();
    rounds.push(((performance.now() - t0) * 1000) / 2000);
  }
  tf.dispose([a, b]);
  return median(rounds);
}

/** Each of TIMED steps' wall time (ms), each waited for, after WARMUP steps. */
async function stepWalls(trainer: Trainer): Promise<number[]> {
  for (let i = 0; i < WARMUP; i++) trainer.trainStep();
  await trainer.readLoss();
  const walls: number[] = [];
  for (let i = 0; i < TIMED; i++) {
    const t0 = performance.now();
    trainer.trainStep();
    await trainer.readLoss();
    walls.push(performance.now() - t0);
  }
  return walls;
}

/** The median wall time of a step of `config` on the graph engine (LTH_ENGINE=graph), after warm-up steps. */
async function graphStepMs(
  config: TrainConfig,
  data: ReturnType<typeof loadDataset>,
): Promise<{ ms: number | null; engine: string }> {
  const saved = { step: process.env.LTH_NATIVE_STEP, engine: process.env.LTH_ENGINE };
  delete process.env.LTH_NATIVE_STEP;
  process.env.LTH_ENGINE = 'graph';
  let trainer: Trainer;
  try {
    trainer = new Trainer(config, data, { weights: getModel(config.model).init(1) });
  } finally {
    if (saved.step === undefined) delete process.env.LTH_NATIVE_STEP;
    else process.env.LTH_NATIVE_STEP = saved.step;
    if (saved.engine === undefined) delete process.env.LTH_ENGINE;
    else process.env.LTH_ENGINE = saved.engine;
  }
  try {
    const engine = trainer.engineInfo.name;
    if (engine !== 'graph') return { ms: null, engine };
    return { ms: median(await stepWalls(trainer)), engine };
  } finally {
    trainer.dispose();
  }
}

async function profileModel(model: string) {
  const data = loadDataset('mnist', 'train', { limit: 4096 });
  const config: TrainConfig = {
    model,
    dataset: 'mnist',
    optimizer: benchOptimizer(model),
    batchSize: BATCH,
    iterations: 10_000,
    evalEvery: 0,
    seed: 1,
  };
  const trainer = new Trainer(config, data, { weights: getModel(model).init(1) });
  try {
    const walls = await stepWalls(trainer);
    // The profiler times each kernel synchronously; its NaN check would read every output back: off.
    const check = tf.env().getBool('CHECK_COMPUTATION_FOR_ERRORS');
    tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', false);
    // A kernel built from other ops (Step on native TensorFlow: IsNan, Greater, Fill, Select) is profiled with
    // its inner kernels inside its time: record each kernel's depth, in the order the profile lists them (a kernel
    // is listed when it returns), and sum only the outermost.
    const engine = tf.engine() as unknown as {
      profiler: { profileKernel: (...args: unknown[]) => unknown };
      state: { kernelDepth: number };
    };
    const original = engine.profiler.profileKernel;
    const profiles: {
      p: Awaited<ReturnType<typeof tf.profile>>;
      times: number[];
      depths: number[];
      leaked: number;
    }[] = [];
    try {
      for (let i = 0; i < PROFILED; i++) {
        const before = tf.memory().numTensors;
        const depths: number[] = [];
        engine.profiler.profileKernel = (...args: unknown[]) => {
          const r = original.apply(engine.profiler, args);
          depths.push(engine.state.kernelDepth);
          return r;
        };
        const p = await tf.profile(() => {
          trainer.trainStep();
        });
        engine.profiler.profileKernel = original;
        await trainer.readLoss();
        if (depths.length !== p.kernels.length) throw new Error('internal: kernel depths out of step');
        const times = await Promise.all(p.kernels.map(async (k) => Number(await k.kernelTimeMs)));
        profiles.push({ p, times, depths, leaked: tf.memory().numTensors - before });
      }
    } finally {
      engine.profiler.profileKernel = original;
      tf.env().set('CHECK_COMPUTATION_FOR_ERRORS', check);
    }
    const outer = (q: (typeof profiles)[number]) =>
      q.times.reduce((x, t, i) => x + (q.depths[i] === 1 ? t : 0), 0);
    const best = profiles.reduce((a, b) => (outer(a) <= outer(b) ? a : b));
    const byKernel = new Map<string, { count: number; ms: number; nested: number }>();
    best.p.kernels.forEach((k, i) => {
      const e = byKernel.get(k.name) ?? { count: 0, ms: 0, nested: 0 };
      e.count++;
      if (best.depths[i] === 1) e.ms += best.times[i] as number;
      else e.nested++;
      byKernel.set(k.name, e);
    });
    const kernelMs = outer(best);
    const outermost = best.depths.filter((d) => d === 1).length;
    const wallMs = median(walls);
    const graph = await graphStepMs(config, data);
    return {
      model,
      batch: BATCH,
      wallMs,
      /**
       * The same step on the graph engine (one TensorFlow session call, the same kernels): what is left once the
       * JavaScript between kernels is gone. Null where the model cannot be a graph here.
       */
      graphWallMs: graph.ms,
      graphEngine: graph.engine,
      /** Every kernel invocation, and those called by the step itself (the rest run inside a composite kernel). */
      kernels: best.p.kernels.length,
      outermostKernels: outermost,
      kernelMs,
      outsideKernelsMs: wallMs - kernelMs,
      outsideShare: (wallMs - kernelMs) / wallMs,
      /** Outside time spread over the outermost kernels: what each op costs beyond its kernel. */
      outsidePerKernelMicros: ((wallMs - kernelMs) * 1000) / outermost,
      tensorsAllocated: best.p.newTensors + best.p.kernels.reduce((n, k) => n + k.tensorsAdded, 0),
      tensorsLeftAfterStep: best.leaked,
      peakBytes: best.p.peakBytes,
      topKernels: [...byKernel]
        .map(([name, e]) => ({ name, count: e.count, nested: e.nested, ms: Number(e.ms.toFixed(3)) }))
        .sort((a, b) => b.ms - a.ms)
        .slice(0, 10),
      kernelCounts: Object.fromEntries([...byKernel].map(([name, e]) => [name, e.count])),
    };
  } finally {
    trainer.dispose();
  }
}

async function main(): Promise<void> {
  const cli = benchCommand(
    'bench/profile',
    "Where a training step's time goes, per model, on one backend: kernels, the JavaScript around them, tensors, " +
      'the cost of one trivial op; writes bench/results/profile-<backend>.json.',
  )
    .option('--backend <name>', 'tensorflow, wasm or cpu', 'tensorflow')
    .option('--threads <n>', 'threads', '1')
    .option('--models <list>', 'comma-separated', MODEL_NAMES.join(','))
    .parse(process.argv);
  const o = cli.opts<{ backend: string; threads: string; models: string }>();
  // This profiles the kernels tfjs's engine runs; LeNet's tape-free step (ml/native/dense-step.ts) runs none
  // there, so it is profiled as the tape would run it, and bench:peer's lth-native-tape row is its baseline.
  process.env.LTH_NATIVE_STEP = 'off';
  const info = await selectBackend({
    prefer: o.backend as BackendName,
    threads: Number(o.threads),
    log: (m) => process.stderr.write(`${m}\n`),
  });
  const dispatch = dispatchMicros();
  process.stderr.write(`[bench/profile] one trivial op: ${dispatch.toFixed(1)} µs\n`);
  const models = [];
  for (const model of o.models.split(',')) {
    const m = await profileModel(model);
    models.push(m);
    process.stderr.write(
      `[bench/profile] ${model.padEnd(19)} step ${m.wallMs.toFixed(1)} ms: ${m.kernels} kernels (${m.outermostKernels} outermost) ${m.kernelMs.toFixed(1)} ms, ` +
        `outside ${m.outsideKernelsMs.toFixed(1)} ms (${(100 * m.outsideShare).toFixed(0)}%, ${m.outsidePerKernelMicros.toFixed(0)} µs a kernel), ` +
        `${m.tensorsAllocated} tensors; as a graph ${m.graphWallMs === null ? `- (${m.graphEngine})` : `${m.graphWallMs.toFixed(1)} ms`}\n`,
    );
  }
  const out = {
    machine: machineInfo(),
    backend: { ...info },
    dispatchMicros: dispatch,
    models,
    notes: [
      `batch ${BATCH}; wallMs: median of ${TIMED} steps, each waited for; kernels and kernelMs: the profiled step ` +
        `(of ${PROFILED}) with the least kernel time, each kernel timed synchronously by the backend; kernelMs sums ` +
        'the outermost kernels (a composite kernel times the kernels it calls; topKernels[].nested counts those)',
      'outsideKernelsMs = wallMs - kernelMs: JavaScript around the kernels (tape, gradient functions, tidy, ' +
        'optimizer, masks, batch assembly)',
      'dispatchMicros: one one-element add and its dispose, the floor under any op',
      'graphWallMs: the same step on the graph engine (LTH_ENGINE=graph: one session call for the whole step), median ' +
        `of ${TIMED} steps after ${WARMUP} warm-up steps; null where the model's step is not a graph here`,
    ],
  };
  const file = path.join(REPO_ROOT, 'bench', 'results', `profile-${info.name}.json`);
  // Empty: no model profiled.
  writeResult(file, out, { isEmpty: (r) => r.models.length === 0 });
  process.stderr.write(`[bench/profile] wrote ${path.relative(process.cwd(), file)}\n`);
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
