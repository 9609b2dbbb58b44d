/**
 * The curvature of ml/geometry against PyTorch's autograd (`npm run bench:geometry -- --check-torch`): for a pruned
 * level of lenet-300-100 and of conv-2 (trained here: dense, pruned 20% by global magnitude, rewound to
 * initialisation and retrained with the mask), the top-3 Hessian eigenvalues and the Hutchinson trace on the same
 * 1,000 MNIST training images, mask and probe vectors, from ours (exact double backward on this process's backend,
 * float32) and from torch.autograd's double backward in float64 (bench/peer/geometry_check.py, PyTorch from
 * .tools/peer). Writes bench/results/geometry-check.json {machine, backend, checks: [{model, level, quantity, lth,
 * torch, relativeError}]} and exits non-zero when an eigenvalue is off by more than 1%.
 *
 *   npm run bench:geometry -- --check-torch                                   # both models, 1,000 images
 *   npm run bench:geometry -- --check-torch --check-models conv-2 --check-images 250
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

import { selectBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { encodeSafetensors } from '../store/safetensors';
import { toTorch, torchMetadata } from '../ml/export';
import { flatten, hessianTrace, modelObjective, rademacher, topEigenvalues, unflatten } from '../ml/geometry';
import { hostTensor, type NamedTensors } from '../ml/host-tensor';
import { getModel, type ModelDef } from '../ml/models';
import { prune } from '../ml/pruning';
import { deriveSeed, Rng } from '../ml/rng';
import { train, type TrainConfig } from '../ml/train';
import { REPO_ROOT } from '../infra/paths';
import { machineInfo, writeResult } from './support';

const PEER = path.join(REPO_ROOT, '.tools', 'peer');
const K = 3;
const TOL = 1e-5;
const MAX_ITERATIONS = 300;
const PROBES = 10;
const EIGEN_TOLERANCE = 0.01;

function log(msg: string): void {
  process.stderr.write(`[bench/geometry --check-torch] ${msg}\n`);
}

interface Check {
  model: string;
  level: number;
  images: number;
  quantity: string;
  lth: number;
  torch: number;
  relativeError: number;
}

/** A level-1 lottery ticket of `model`: dense training, 20% global magnitude pruning, rewind to init, retraining. */
async function prunedLevel(
  model: ModelDef,
  config: TrainConfig,
): Promise<{ weights: NamedTensors; masks: NamedTensors }> {
  const data = {
    train: loadDataset('mnist', 'train', { limit: config.trainLimit }),
    test: loadDataset('mnist', 'test', { limit: config.testLimit }),
  };
  const init = model.init(config.seed);
  const dense = await train(config, data, { initialWeights: init });
  const ones: NamedTensors = {};
  for (const p of model.params.filter((q) => q.prunable)) {
    const m = hostTensor('float32', p.shape);
    m.data.fill(1);
    ones[p.name] = m;
  }
  const masks = prune(dense.state.weights, ones, { kind: 'global-magnitude', fraction: 0.2 });
  const level = await train(config, data, { initialWeights: init, masks });
  log(
    `${model.name}: dense ${(100 * dense.final.testAccuracy).toFixed(1)}%, level 1 ` +
      `${(100 * level.final.testAccuracy).toFixed(1)}% test accuracy`,
  );
  return { weights: level.state.weights, masks };
}

function runPython(args: string[], threads: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, OMP_NUM_THREADS: String(threads), MKL_NUM_THREADS: String(threads) };
    const child = execFile(
      path.join(PEER, 'bin', 'python'),
      args,
      { cwd: REPO_ROOT, env, maxBuffer: 1 << 24 },
      (err, stdout) => (err ? reject(err) : resolve(stdout.trim().split('\n').at(-1) ?? '')),
    );
    child.stderr?.on('data', (d: Buffer) => process.stderr.write(`  ${d.toString().trim()}\n`));
  });
}

async function checkModel(
  name: string,
  config: TrainConfig,
  dir: string,
  threads: number,
  images: number,
): Promise<Check[]> {
  const model = getModel(name);
  const { weights, masks } = await prunedLevel(model, config);
  const data = loadDataset('mnist', 'train', { limit: images });
  const objective = modelObjective(model, data, { masks, batchSize: 250 });
  try {
    const space = objective.space;
    const theta = flatten(space, weights);
    let t = performance.now();
    const pairs = await topEigenvalues(objective, theta, {
      k: K,
      tol: TOL,
      maxIterations: MAX_ITERATIONS,
      seed: 0,
    });
    log(
      `${name}: ours ${pairs.map((p) => `${p.value.toFixed(4)} (${p.iterations} it)`).join(', ')} in ` +
        `${((performance.now() - t) / 1000).toFixed(0)} s`,
    );
    const probes = Array.from({ length: PROBES }, (_, i) =>
      rademacher(space, new Rng(deriveSeed(0, 'hutchinson', i))),
    );
    const trace = await hessianTrace(objective, theta, { samples: PROBES, seed: 0 });

    // The same level, mask and probes in PyTorch's names and layouts.
    const full: NamedTensors = {};
    for (const p of model.params) {
      const m = hostTensor('float32', p.shape);
      if (masks[p.name]) m.data.set(masks[p.name]!.data);
      else m.data.fill(1);
      full[p.name] = m;
    }
    const probeTensors: NamedTensors = {};
    probes.forEach((v, i) => {
      for (const [n, tensor] of Object.entries(toTorch(model, unflatten(space, v))))
        probeTensors[`probe${i}/${n}`] = tensor;
    });
    const files = {
      weights: path.join(dir, `${name}.weights.safetensors`),
      masks: path.join(dir, `${name}.masks.safetensors`),
      probes: path.join(dir, `${name}.probes.safetensors`),
      images: path.join(dir, 'images.f32'),
      labels: path.join(dir, 'labels.i32'),
    };
    writeFileSync(files.weights, encodeSafetensors(toTorch(model, weights), torchMetadata(model)));
    writeFileSync(files.masks, encodeSafetensors(toTorch(model, full)));
    writeFileSync(files.probes, encodeSafetensors(probeTensors));
    writeFileSync(
      files.images,
      Buffer.from(data.images.buffer, data.images.byteOffset, data.images.byteLength),
    );
    writeFileSync(files.labels, Buffer.from(Int32Array.from(data.labels).buffer));
    t = performance.now();
    const out = JSON.parse(
      await runPython(
        [
          path.join(REPO_ROOT, 'bench', 'peer', 'geometry_check.py'),
          JSON.stringify({
            ...files,
            k: K,
            tol: TOL,
            maxIterations: MAX_ITERATIONS,
            probeCount: PROBES,
            threads,
          }),
        ],
        threads,
      ),
    ) as { eigenvalues: number[]; iterations: number[]; traceSamples: number[]; torch: string };
    log(
      `${name}: torch ${out.eigenvalues.map((e) => e.toFixed(4)).join(', ')} in ${((performance.now() - t) / 1000).toFixed(0)} s`,
    );
    const ours = pairs.map((p) => p.value).sort((a, b) => b - a);
    const theirs = [...out.eigenvalues].sort((a, b) => b - a);
    const rel = (a: number, b: number) => Math.abs(a - b) / Math.abs(b);
    const torchTrace = out.traceSamples.reduce((a, b) => a + b, 0) / out.traceSamples.length;
    return [
      ...ours.map((v, i) => ({
        model: name,
        level: 1,
        images,
        quantity: `eigenvalue ${i + 1}`,
        lth: v,
        torch: theirs[i] as number,
        relativeError: rel(v, theirs[i] as number),
      })),
      {
        model: name,
        level: 1,
        images,
        quantity: `trace (the same ${PROBES} Rademacher probes)`,
        lth: trace.trace,
        torch: torchTrace,
        relativeError: rel(trace.trace, torchTrace),
      },
    ];
  } finally {
    objective.dispose();
  }
}

const TRAINING: Record<string, TrainConfig> = {
  'lenet-300-100': {
    model: 'lenet-300-100',
    dataset: 'mnist',
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0 },
    batchSize: 128,
    iterations: 400,
    evalEvery: 0,
    seed: 0,
    trainLimit: 10_000,
    testLimit: 2_000,
  },
  'conv-2': {
    model: 'conv-2',
    dataset: 'mnist',
    optimizer: { kind: 'adam', lr: 2e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
    batchSize: 64,
    iterations: 150,
    evalEvery: 0,
    seed: 0,
    trainLimit: 10_000,
    testLimit: 2_000,
  },
};

/**
 * Checks `models` (default both) on `images` training images (default 1,000) and writes their rows into
 * bench/results/geometry-check.json, keeping the rows of models not checked this time.
 */
export async function checkAgainstTorch(opts: {
  threads: number;
  models?: string[];
  images?: number;
}): Promise<void> {
  const models = opts.models ?? Object.keys(TRAINING);
  const images = opts.images ?? 1000;
  for (const m of models)
    if (!TRAINING[m])
      throw new Error(`--check-models: ${m} is not one of ${Object.keys(TRAINING).join(', ')}`);
  if (!Number.isInteger(images) || images < 10)
    throw new Error(`--check-images must be an integer >= 10, got ${images}`);
  execFileSync('bash', [path.join(REPO_ROOT, 'bench', 'peer', 'install.sh')], { stdio: 'inherit' });
  const backend = await selectBackend({ prefer: 'auto', threads: opts.threads, log: () => {} });
  log(`backend ${backend.name}, ${opts.threads} threads, ${images} images`);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'lth-geometry-check-'));
  const out = path.join(REPO_ROOT, 'bench', 'results', 'geometry-check.json');
  const started = performance.now();
  try {
    const checks: Check[] = [];
    for (const m of models)
      checks.push(...(await checkModel(m, TRAINING[m] as TrainConfig, dir, opts.threads, images)));
    const earlier = existsSync(out)
      ? ((JSON.parse(readFileSync(out, 'utf8')) as { checks?: Check[] }).checks ?? [])
      : [];
    const result = {
      machine: machineInfo(),
      backend: backend.name,
      threads: opts.threads,
      method: { lth: 'double backward, float32', torch: 'torch.autograd double backward, float64' },
      powerIteration: { k: K, tol: TOL, maxIterations: MAX_ITERATIONS },
      seconds: (performance.now() - started) / 1000,
      checks: [...earlier.filter((c) => !models.includes(c.model)), ...checks],
    };
    writeResult(out, result, { isEmpty: () => checks.length === 0 });
    for (const c of checks) {
      log(
        `${c.model} ${c.quantity}: ours ${c.lth.toPrecision(6)}, torch ${c.torch.toPrecision(6)}, ` +
          `${(100 * c.relativeError).toFixed(3)}%`,
      );
    }
    log(`wrote ${path.relative(REPO_ROOT, out)}`);
    const off = checks.filter(
      (c) => c.quantity.startsWith('eigenvalue') && c.relativeError > EIGEN_TOLERANCE,
    );
    if (off.length > 0) {
      throw new Error(`${off.length} eigenvalue(s) off by more than ${100 * EIGEN_TOLERANCE}% of PyTorch's`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
