/**
 * Our training speed against PyTorch's on this machine, in the same run: every model in MODEL_NAMES, batch 128,
 * SGD with momentum (bench/support.ts benchOptimizer), the same step policy and the same 10,000 MNIST images, on
 * our native and wasm backends and on PyTorch's CPU kernels, each at 1 thread and at every core. Configurations run
 * in fresh processes, alternating (round 1 of every configuration, then round 2, ...), and each reports the median
 * of its rounds, so a busy neighbour shifts both sides alike. Writes bench/results/peer.json.
 *
 *   npm run bench:peer                                   # everything (~15 min on 2 cores)
 *   npm run bench:peer -- --models lenet-300-100,vit-tiny --rounds 5
 *   npm run bench:peer -- --frameworks lth-native,lth-native-composite   # what ml/native-kernels.ts saves
 *
 * The PyTorch side (bench/peer/torch_peer.py, architectures layer for layer as ml/models) runs in .tools/peer/,
 * installed on first use by bench/peer/install.sh from the pinned bench/peer/requirements.txt (a few GB; never part
 * of .ci/run). Rows measured by an earlier invocation and not by this one are kept in the file.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { Command } from 'commander';

import { REPO_ROOT } from '../infra/paths';
import { loadDataset } from '../ml/data';
import { getModel } from '../ml/models';
import { MODEL_NAMES } from '../ml/models/names';
import type { BenchResult, RunSpec } from './backends';
import { benchOptimizer, machineInfo, median } from './support';

/** lth-native-composite: native TensorFlow with tfjs's composite gradients (LTH_NATIVE_KERNELS=off), the baseline. */
type Framework = 'lth-native' | 'lth-native-composite' | 'lth-wasm' | 'pytorch';

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
  version: string;
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
    const r = JSON.parse(out) as { samplesPerSec: number; torch: string; threads: number };
    if (r.threads !== c.threads) throw new Error(`torch ran ${r.threads} threads, ${c.threads} asked`);
    return { samplesPerSec: r.samplesPerSec, version: `torch ${r.torch}` };
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
    },
  );
  const r = JSON.parse(out) as BenchResult;
  return { samplesPerSec: r.samplesPerSec, version: `${r.package}@${r.version}` };
}

/** Refuses to compare models that are not the same: PyTorch's parameter count must equal ml/models'. */
async function checkArchitectures(models: string[], data: { images: string; labels: string }): Promise<void> {
  for (const model of models) {
    const out = await runProcess(
      path.join(PEER, 'bin', 'python'),
      [
        path.join(REPO_ROOT, 'bench', 'peer', 'torch_peer.py'),
        JSON.stringify({ model, threads: 1, batch: BATCH, lr: 0.01, count: true, ...data }),
      ],
      process.env,
    );
    const theirs = (JSON.parse(out) as { params: number }).params;
    const ours = getModel(model).params.reduce((n, p) => n + p.shape.reduce((a, b) => a * b, 1), 0);
    if (theirs !== ours) throw new Error(`${model}: PyTorch's has ${theirs} parameters, ours ${ours}`);
  }
  log(`architectures: ${models.length} models, the same parameter counts on both sides`);
}

async function main(): Promise<void> {
  const cores = os.cpus().length;
  const cli = new Command('bench/peer')
    .option('--models <list>', 'comma-separated', MODEL_NAMES.join(','))
    .option('--frameworks <list>', 'comma-separated', 'lth-native,lth-wasm,pytorch')
    .option('--rounds <n>', 'rounds per configuration (the median is reported)', '3')
    .parse(process.argv);
  const o = cli.opts<{ models: string; frameworks: string; rounds: string }>();
  const models = o.models.split(',');
  for (const m of models)
    if (!(MODEL_NAMES as readonly string[]).includes(m))
      throw new Error(`--models: unknown ${m} (${MODEL_NAMES.join(', ')})`);
  const frameworks = o.frameworks.split(',') as Framework[];
  const rounds = Number(o.rounds);
  if (!Number.isInteger(rounds) || rounds < 1)
    throw new Error(`--rounds: expected an integer >= 1, got ${o.rounds}`);

  if (frameworks.includes('pytorch')) {
    execFileSync('bash', [path.join(REPO_ROOT, 'bench', 'peer', 'install.sh')], { stdio: 'inherit' });
  }
  const data = writeData();
  if (frameworks.includes('pytorch')) await checkArchitectures(models, data);
  // wasm computes on one thread under Node.js whatever it is asked (bench/results/backends.json notes): one row.
  // The composite baseline answers one question (what the native kernels save), on one thread.
  const threadCounts = (f: Framework) =>
    f === 'lth-wasm' || f === 'lth-native-composite' ? [1] : [...new Set([1, cores])];
  const configs: Config[] = models.flatMap((model) =>
    frameworks.flatMap((framework) =>
      threadCounts(framework).map((threads) => ({ model, framework, threads })),
    ),
  );
  const measured = new Map<Config, { rounds: number[]; version: string }>();
  const started = performance.now();
  for (let round = 1; round <= rounds; round++) {
    for (const c of configs) {
      const label = `${c.model} ${c.framework} ${c.threads}t`;
      try {
        const r = await measure(c, data);
        const m = measured.get(c) ?? { rounds: [], version: r.version };
        m.rounds.push(r.samplesPerSec);
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
    version: m.version,
  }));
  const file = path.join(REPO_ROOT, 'bench', 'results', 'peer.json');
  const key = (r: Config) => `${r.model}/${r.framework}/${r.threads}`;
  const fresh = new Set(rows.map(key));
  const stored = existsSync(file)
    ? (JSON.parse(readFileSync(file, 'utf8')) as { results?: Row[]; baselines?: Row[] })
    : {};
  const previous = [...(stored.results ?? []), ...(stored.baselines ?? [])];
  const all = [...previous.filter((r) => !fresh.has(key(r))), ...rows].sort(
    (a, b) =>
      MODEL_NAMES.indexOf(a.model as (typeof MODEL_NAMES)[number]) -
        MODEL_NAMES.indexOf(b.model as (typeof MODEL_NAMES)[number]) || key(a).localeCompare(key(b)),
  );
  // `results` keeps the frameworks (lth-native, lth-wasm, pytorch); the composite baseline goes apart.
  const results = all.filter((r) => r.framework !== 'lth-native-composite');
  const baselines = all.filter((r) => r.framework === 'lth-native-composite');
  // Each framework at its best thread count, and ours over PyTorch's.
  const best = (model: string, f: Framework) =>
    Math.max(0, ...all.filter((r) => r.model === model && r.framework === f).map((r) => r.samplesPerSec));
  const ratios = MODEL_NAMES.filter((m) => best(m, 'pytorch') > 0 && best(m, 'lth-native') > 0).map(
    (model) => ({
      model,
      lthNative: best(model, 'lth-native'),
      lthWasm: best(model, 'lth-wasm') || null,
      lthNativeComposite: best(model, 'lth-native-composite') || null,
      pytorch: best(model, 'pytorch'),
      ratio: Number((best(model, 'lth-native') / best(model, 'pytorch')).toFixed(3)),
    }),
  );
  const out = {
    machine: { ...machineInfo(), loadAverageAtStart: os.loadavg().map((x) => Math.round(x * 100) / 100) },
    results,
    baselines,
    ratios,
    notes: [
      `batch ${BATCH}, SGD momentum 0.9 (lr 0.1 for lenet-300-100, 0.01 otherwise), the step policy of bench/backends.ts`,
      `each row: the median of its rounds (every round in 'rounds'), configurations alternating, each in a fresh process`,
      'ratios: lth-native at its best thread count over PyTorch at its best',
      "baselines: lth-native-composite, native TensorFlow with tfjs's composite gradients (LTH_NATIVE_KERNELS=off)",
      `this invocation: ${((performance.now() - started) / 1000).toFixed(0)} s`,
    ],
  };
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, JSON.stringify(out, null, 2) + '\n');
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
