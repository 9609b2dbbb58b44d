/**
 * Our training speed against PyTorch's on this machine, in the same run: every model in MODEL_NAMES, batch 128,
 * SGD with momentum (bench/support.ts benchOptimizer), the same step policy and the same 10,000 MNIST images, on
 * our native and wasm backends and on PyTorch's CPU kernels, each at 1 thread and at every core. Configurations run
 * in fresh processes, alternating (round 1 of every configuration, then round 2, ...), and each reports the median
 * of its rounds, so a busy neighbour shifts both sides alike. Writes bench/results/peer.json.
 *
 *   npm run bench:peer                                   # everything (~15 min on 2 cores)
 *   npm run bench:peer -- --models lenet-300-100,vit-tiny --rounds 5
 *   npm run bench:peer -- --frameworks lth-native,lth-native-composite   # what ml/native/kernels.ts saves
 *   npm run bench:peer -- --check-only                   # only: the same model on both sides (below)
 *
 * Before timing anything, each model is trained a few steps here, exported to PyTorch's layout (what `lth export`
 * writes) and loaded into the PyTorch model, and both must give the same logits: the comparison is of equal models.
 * Each row also records the process's peak resident memory.
 *
 * The PyTorch side (bench/peer/torch_peer.py, architectures layer for layer as ml/models) runs in .tools/peer/,
 * installed on first use by bench/peer/install.sh from the pinned bench/peer/requirements.txt (a few GB; never part
 * of .ci/run). Rows measured by an earlier invocation and not by this one are kept in the file.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import * as tf from '@tensorflow/tfjs-core';

import { REPO_ROOT } from '../infra/paths';
import { selectBackend } from '../ml/backend';
import { imageSize, loadDataset } from '../ml/data';
import { toTorch, torchMetadata } from '../ml/export';
import { getModel, VIT_TINY, vitModel, type ModelDef, type VitModelDef } from '../ml/models';
import { MODEL_NAMES } from '../ml/models/names';
import { namedFromHost } from '../ml/tensors';
import { Trainer } from '../ml/train';
import { encodeSafetensors } from '../store';
import type { BenchResult, RunSpec } from './backends';
import { benchCommand, benchOptimizer, machineInfo, median, writeResult } from './support';

/**
 * Baselines: lth-native-composite, native TensorFlow with tfjs's composite gradients (LTH_NATIVE_KERNELS=off);
 * lth-native-tape, native TensorFlow with every step through tfjs's tape (LTH_NATIVE_STEP=off: no graph step).
 */
type Framework = 'lth-native' | 'lth-native-composite' | 'lth-native-tape' | 'lth-wasm' | 'pytorch';
const BASELINES: readonly Framework[] = ['lth-native-composite', 'lth-native-tape'];

interface Config {
  model: string;
  framework: Framework;
  threads: number;
}

interface Row extends Config {
  batch: number;
  /** The median round's samples/s. */
  samplesPerSec: number;
  /** Every round's samples/s, in the order they ran. */
  rounds: number[];
  /** The median round's peak resident memory of the whole process (MiB). */
  peakRssMiB: number | null;
  version: string;
  /** The code path that ran the timed steps: the step engine (and its notes), or PyTorch's. */
  engine?: string;
  /** When the invocation that measured it started (ISO time): the key into the file's `invocations`. */
  invocation?: string;
}

function sameInvocation(a: Row | null, b: Row | null): boolean {
  return a?.invocation !== undefined && a.invocation === b?.invocation;
}

/** One run of this bench whose rows the file still holds: rows of different invocations are compared with care. */
interface Invocation {
  startedAt: string;
  machine: ReturnType<typeof machineInfo> & { loadAverageAtStart: number[] };
  seconds: number;
  args: string[];
}

const BATCH = 128;
const PEER = path.join(REPO_ROOT, '.tools', 'peer');
const DATA = path.join(REPO_ROOT, '.data', 'peer');

function log(msg: string): void {
  process.stderr.write(`[bench/peer] ${msg}\n`);
}

/** The images and labels both sides train on, as raw little-endian float32 / int32 files PyTorch maps directly. */
function writeData(): { images: string; labels: string } {
  const images = path.join(DATA, 'mnist-10k.f32');
  const labels = path.join(DATA, 'mnist-10k.i32');
  if (!existsSync(images) || !existsSync(labels)) {
    const data = loadDataset('mnist', 'train', { limit: 10_000 });
    mkdirSync(DATA, { recursive: true });
    writeFileSync(images, Buffer.from(data.images.buffer, data.images.byteOffset, data.images.byteLength));
    const l = Int32Array.from(data.labels);
    writeFileSync(labels, Buffer.from(l.buffer));
  }
  return { images, labels };
}

function runProcess(file: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { cwd: REPO_ROOT, env, maxBuffer: 1 << 20 }, (err, stdout) =>
      err ? reject(err) : resolve(stdout.trim().split('\n').at(-1) ?? ''),
    );
    child.stderr?.on('data', (d: Buffer) => {
      const line = d.toString().trim();
      if (line && !/^\s+\S+\/\S+\/\S+: \d+ steps/.test(line)) process.stderr.write(`  ${line}\n`);
    });
  });
}

/** One round of one configuration, in a fresh process: samples/s and the framework's version. */
async function measure(c: Config, data: { images: string; labels: string }) {
  if (c.framework === 'pytorch') {
    const out = await runProcess(
      path.join(PEER, 'bin', 'python'),
      [
        path.join(REPO_ROOT, 'bench', 'peer', 'torch_peer.py'),
        JSON.stringify({
          model: c.model,
          threads: c.threads,
          batch: BATCH,
          lr: benchOptimizer(c.model).lr,
          ...data,
        }),
      ],
      // One intra-op pool of the asked size, nothing else spinning (OpenMP would take every core by default).
      { ...process.env, OMP_NUM_THREADS: String(c.threads), MKL_NUM_THREADS: String(c.threads) },
    );
    const r = JSON.parse(out) as {
      samplesPerSec: number;
      torch: string;
      threads: number;
      peakRssMiB: number;
    };
    if (r.threads !== c.threads) throw new Error(`torch ran ${r.threads} threads, ${c.threads} asked`);
    return {
      samplesPerSec: r.samplesPerSec,
      peakRssMiB: r.peakRssMiB,
      version: `torch ${r.torch}`,
      engine: 'pytorch eager',
    };
  }
  const spec: RunSpec = {
    backend: c.framework === 'lth-wasm' ? 'wasm' : 'tensorflow',
    threads: c.threads,
    model: c.model,
    batch: BATCH,
    rounds: 1,
  };
  const out = await runProcess(
    process.execPath,
    ['--import', 'tsx', path.join(REPO_ROOT, 'bench', 'backends.ts'), '--child', JSON.stringify(spec)],
    {
      ...process.env,
      LTH_BACKEND: '',
      LTH_THREADS: '',
      TF_NUM_INTRAOP_THREADS: '',
      LTH_NATIVE_KERNELS: c.framework === 'lth-native-composite' ? 'off' : '',
      LTH_NATIVE_STEP: c.framework === 'lth-native-tape' ? 'off' : '',
    },
  );
  const r = JSON.parse(out) as BenchResult;
  return {
    samplesPerSec: r.samplesPerSec,
    peakRssMiB: r.peakRssMiB ?? null,
    version: `${r.package}@${r.version}`,
    engine: [r.engine ?? 'unknown', ...(r.engineNotes ?? [])].join('; '),
  };
}

/** Steps of training before the check, so that biases and every weight have moved off their initial values. */
const CHECK_STEPS = 20;
const CHECK_IMAGES = 64;
/** The largest difference of a logit the check accepts (float32 kernels summing in different orders). */
const CHECK_TOLERANCE = 1e-4;

/**
 * Refuses to compare models that are not the same: each of ours is trained a few steps, exported to PyTorch's
 * layout (ml/export, what `lth export` writes), loaded into bench/peer/lth_models.py's model, and both must give the
 * same logits on the same images within CHECK_TOLERANCE.
 */
async function checkSameModels(models: string[]): Promise<void> {
  await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
  const train = loadDataset('mnist', 'train', { limit: 1_000 });
  const images = train.images.subarray(0, CHECK_IMAGES * imageSize(train));
  const imagesFile = path.join(DATA, 'check-images.f32');
  writeFileSync(imagesFile, Buffer.from(images.buffer, images.byteOffset, images.byteLength));
  // The registry's models, and a distillation student (two distillation tokens, feature projection) when the ViT is in.
  const defs: ModelDef[] = models.map((m) => getModel(m));
  if (models.includes('vit-tiny')) {
    defs.push(vitModel('vit-tiny', { ...VIT_TINY, distillTokens: 2, featureChannels: 64 }));
  }
  for (const def of defs) {
    const model = def.name;
    const label = 'config' in def ? `${model} ${JSON.stringify(def.config)}` : model;
    // The feature projection does not reach the logits, so training leaves it out (it would get no gradient); it
    // keeps its initial values, and PyTorch's strict load still checks its name and shape.
    const trained =
      'config' in def ? vitModel(model, { ...(def as VitModelDef).config, featureChannels: undefined }) : def;
    const trainer = new Trainer(
      {
        model,
        dataset: 'mnist',
        optimizer: benchOptimizer(model),
        batchSize: 64,
        iterations: CHECK_STEPS,
        evalEvery: 0,
        seed: 1,
      },
      train,
      { weights: trained.init(1), model: trained },
    );
    let weights;
    try {
      for (let i = 0; i < CHECK_STEPS; i++) trainer.trainStep();
      weights = { ...def.init(1), ...(await trainer.snapshot([])).weights };
    } finally {
      trainer.dispose();
    }
    const logits = tf.tidy(() => {
      const params = namedFromHost(weights);
      return def.forward(params, tf.tensor(images, [CHECK_IMAGES, ...def.inputShape]), false);
    });
    const ours = new Float32Array(await logits.data());
    logits.dispose();
    const weightsFile = path.join(DATA, 'check.torch.safetensors');
    const logitsFile = path.join(DATA, 'check-logits.f32');
    writeFileSync(weightsFile, encodeSafetensors(toTorch(def, weights), torchMetadata(def)));
    writeFileSync(logitsFile, Buffer.from(ours.buffer));
    const out = await runProcess(
      path.join(PEER, 'bin', 'python'),
      [
        path.join(REPO_ROOT, 'bench', 'peer', 'torch_peer.py'),
        JSON.stringify({ check: { weights: weightsFile, images: imagesFile, logits: logitsFile } }),
      ],
      process.env,
    );
    const r = JSON.parse(out) as { maxAbsDiff: number; maxAbs: number };
    if (!(r.maxAbsDiff <= CHECK_TOLERANCE)) {
      throw new Error(
        `${label}: PyTorch's model with our exported weights differs from ours by ${r.maxAbsDiff} in a logit ` +
          `(largest logit ${r.maxAbs.toFixed(2)}): not the same model`,
      );
    }
    log(
      `same model: ${label}: largest logit difference ${r.maxAbsDiff.toExponential(1)} (of ${r.maxAbs.toFixed(1)})`,
    );
  }
}

/** The peak RSS of the round whose samples/s is the median (the row's round). */
function medianRss(rounds: number[], rss: (number | null)[]): number | null {
  const mid = median(rounds);
  const at = rounds.findIndex((v) => v === mid);
  const value = at >= 0 ? rss[at] : null;
  return value === null || value === undefined ? null : Math.round(value);
}

async function main(): Promise<void> {
  const cores = os.cpus().length;
  const cli = benchCommand(
    'bench/peer',
    "Our training speed against PyTorch's on this machine, every model on native and wasm backends and PyTorch's " +
      'CPU kernels, after checking both sides are the same model; writes bench/results/peer.json.',
  )
    .option('--models <list>', 'comma-separated', MODEL_NAMES.join(','))
    .option('--frameworks <list>', 'comma-separated', 'lth-native,lth-wasm,pytorch')
    .option('--rounds <n>', 'rounds per configuration (the median is reported)', '3')
    .option('--check-only', 'only check that both sides are the same model (exported weights, equal logits)')
    .parse(process.argv);
  const o = cli.opts<{ models: string; frameworks: string; rounds: string; checkOnly?: boolean }>();
  const models = o.models.split(',');
  for (const m of models)
    if (!(MODEL_NAMES as readonly string[]).includes(m))
      throw new Error(`--models: unknown ${m} (${MODEL_NAMES.join(', ')})`);
  const frameworks = o.frameworks.split(',') as Framework[];
  const rounds = Number(o.rounds);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds: expected an integer >= 1, got ${o.rounds}`);

  if (frameworks.includes('pytorch') || o.checkOnly) {
    execFileSync('bash', [path.join(REPO_ROOT, 'bench', 'peer', 'install.sh')], { stdio: 'inherit' });
  }
  const data = writeData();
  if (frameworks.includes('pytorch') || o.checkOnly) await checkSameModels(models);
  if (o.checkOnly) return;
  // wasm computes on one thread under Node.js whatever it is asked (bench/results/backends.json notes): one row.
  // A baseline answers one question (what the native kernels, the tape-free dense step save), on one thread.
  const threadCounts = (f: Framework) =>
    f === 'lth-wasm' || BASELINES.includes(f) ? [1] : [...new Set([1, cores])];
  const configs: Config[] = models.flatMap((model) =>
    frameworks.flatMap((framework) =>
      threadCounts(framework).map((threads) => ({ model, framework, threads })),
    ),
  );
  const measured = new Map<
    Config,
    { rounds: number[]; rss: (number | null)[]; version: string; engine: string }
  >();
  const started = performance.now();
  const startedAt = new Date().toISOString();
  const machine = {
    ...machineInfo(),
    loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100),
  };
  for (let round = 1; round <= rounds; round++) {
    for (const c of configs) {
      const label = `${c.model} ${c.framework} ${c.threads}t`;
      try {
        const r = await measure(c, data);
        const m = measured.get(c) ?? { rounds: [], rss: [], version: r.version, engine: r.engine };
        if (m.engine !== r.engine) m.engine = `${m.engine} | round ${round}: ${r.engine}`;
        m.rounds.push(r.samplesPerSec);
        m.rss.push(r.peakRssMiB);
        measured.set(c, m);
        log(`round ${round}/${rounds}: ${label}: ${r.samplesPerSec.toFixed(0)} samples/s`);
      } catch (err) {
        log(`round ${round}/${rounds}: ${label} failed: ${(err as Error).message.split('\n')[0]}`);
      }
    }
  }
  const rows: Row[] = [...measured].map(([c, m]) => ({
    ...c,
    batch: BATCH,
    samplesPerSec: Number(median(m.rounds).toPrecision(4)),
    rounds: m.rounds.map((v) => Number(v.toPrecision(4))),
    peakRssMiB: medianRss(m.rounds, m.rss),
    version: m.version,
    engine: m.engine,
    invocation: startedAt,
  }));
  const file = path.join(REPO_ROOT, 'bench', 'results', 'peer.json');
  const key = (r: Config) => `${r.model}/${r.framework}/${r.threads}`;
  const fresh = new Set(rows.map(key));
  const stored = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as {
        results?: Row[];
        baselines?: Row[];
        invocations?: Invocation[];
      })
    : {};
  const previous = [...(stored.results ?? []), ...(stored.baselines ?? [])];
  const all = [...previous.filter((r) => !fresh.has(key(r))), ...rows].sort(
    (a, b) =>
      MODEL_NAMES.indexOf(a.model as (typeof MODEL_NAMES)[number]) -
        MODEL_NAMES.indexOf(b.model as (typeof MODEL_NAMES)[number]) || key(a).localeCompare(key(b)),
  );
  // `results` keeps the frameworks (lth-native, lth-wasm, pytorch); the baselines go apart.
  const results = all.filter((r) => !BASELINES.includes(r.framework));
  const baselines = all.filter((r) => BASELINES.includes(r.framework));
  // Each framework at its best thread count, and ours over PyTorch's.
  const best = (model: string, f: Framework) =>
    Math.max(0, ...all.filter((r) => r.model === model && r.framework === f).map((r) => r.samplesPerSec));
  const bestRow = (model: string, f: Framework) =>
    all
      .filter((r) => r.model === model && r.framework === f)
      .reduce<Row | null>((a, r) => (a && a.samplesPerSec >= r.samplesPerSec ? a : r), null);
  const thisInvocation: Invocation = {
    startedAt,
    machine,
    seconds: Math.round((performance.now() - started) / 1000),
    args: process.argv.slice(2),
  };
  const kept = new Set(all.map((r) => r.invocation));
  const invocations = [
    ...(stored.invocations ?? []).filter((i) => i.startedAt !== startedAt && kept.has(i.startedAt)),
    thisInvocation,
  ];
  const ratios = MODEL_NAMES.filter((m) => best(m, 'pytorch') > 0 && best(m, 'lth-native') > 0).map(
    (model) => ({
      model,
      lthNative: best(model, 'lth-native'),
      lthWasm: best(model, 'lth-wasm') || null,
      lthNativeComposite: best(model, 'lth-native-composite') || null,
      lthNativeTape: best(model, 'lth-native-tape') || null,
      pytorch: best(model, 'pytorch'),
      ratio: Number((best(model, 'lth-native') / best(model, 'pytorch')).toFixed(3)),
      // A ratio is a same-machine claim only when both sides were measured in one invocation.
      sameInvocation: sameInvocation(bestRow(model, 'lth-native'), bestRow(model, 'pytorch')),
    }),
  );
  const out = {
    machine,
    invocations,
    results,
    baselines,
    ratios,
    notes: [
      `batch ${BATCH}, SGD momentum 0.9 (lr 0.1 for lenet-300-100, 0.01 otherwise), the step policy of bench/backends.ts`,
      `each row: the median of its rounds (every round in 'rounds'), configurations alternating, each in a fresh process`,
      'ratios: lth-native at its best thread count over PyTorch at its best',
      "baselines: lth-native-composite, native TensorFlow with tfjs's composite gradients (LTH_NATIVE_KERNELS=off); " +
        "lth-native-tape, every step through tfjs's tape (LTH_NATIVE_STEP=off: no graph step, neither LeNet's nor a traced one)",
      "machine: the latest invocation's; every row names the invocation that measured it (`invocations`), and a " +
        'ratio says whether both of its sides come from one (sameInvocation)',
    ],
  };
  // Empty: every configuration of this invocation failed (rows of earlier ones alone are not rewritten).
  writeResult(file, out, { isEmpty: () => rows.length === 0 });
  log(`wrote ${path.relative(process.cwd(), file)}`);
  for (const r of ratios)
    log(
      `${r.model.padEnd(19)} lth-native ${r.lthNative.toFixed(0).padStart(6)}  pytorch ${r.pytorch.toFixed(0).padStart(6)}  ${r.ratio.toFixed(2)}×`,
    );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
