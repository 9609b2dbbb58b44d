/**
 * Quick training-throughput check of the native backend against wasm (and cpu), on synthetic MNIST-shaped data
 * with plain tfjs-core ops and tf.train.sgd; bench/backends.ts measures the project's own Trainer instead.
 *
 *   node --import tsx infra/tfjs-native/bench.ts [PROJECT_ROOT] [backend ...]   # tensorflow, wasm, cpu
 *
 * Models, batch 128: 'mlp' = 784-300-100-10 (LeNet-300-100); 'cnn' = conv3x3(16)-maxpool-conv3x3(32)-maxpool-
 * dense(10) on 28x28x1. Each (backend, model) runs in its own child process and prints the median of 3 timed
 * windows. Needs @tensorflow/tfjs (a dependency of tfjs-node) for the gradients.
 */
import { execFileSync } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs-core';

const BATCH = 128;
const WINDOW_SECONDS = 2;
type Kind = 'mlp' | 'cnn';

function model(tf: typeof TF, kind: Kind): { f: (x: TF.Tensor) => TF.Tensor; inShape: number[] } {
  const he = (shape: number[], fanIn: number, seed: number) =>
    tf.variable(tf.randomNormal(shape, 0, Math.sqrt(2 / fanIn), 'float32', seed));
  const zeros = (n: number) => tf.variable(tf.zeros([n]));
  if (kind === 'mlp') {
    const [w1, w2, w3] = [he([784, 300], 784, 1), he([300, 100], 300, 2), he([100, 10], 100, 3)];
    const [b1, b2, b3] = [zeros(300), zeros(100), zeros(10)];
    const f = (x: TF.Tensor) => {
      const h1 = tf.relu(tf.add(tf.matMul(x, w1), b1));
      const h2 = tf.relu(tf.add(tf.matMul(h1, w2), b2));
      return tf.add(tf.matMul(h2, w3), b3);
    };
    return { f, inShape: [BATCH, 784] };
  }
  const [k1, k2] = [
    he([3, 3, 1, 16], 9, 1) as TF.Variable<TF.Rank.R4>,
    he([3, 3, 16, 32], 144, 2) as TF.Variable<TF.Rank.R4>,
  ];
  const [w3, b1, b2, b3] = [he([7 * 7 * 32, 10], 1568, 3), zeros(16), zeros(32), zeros(10)];
  const block = (x: TF.Tensor4D, k: TF.Tensor4D, b: TF.Tensor) =>
    tf.maxPool(tf.relu(tf.add(tf.conv2d(x, k, 1, 'same'), b)) as TF.Tensor4D, 2, 2, 'valid');
  const f = (x: TF.Tensor) => {
    const c2 = block(block(x as TF.Tensor4D, k1, b1), k2, b2);
    return tf.add(tf.matMul(tf.reshape(c2, [BATCH, 7 * 7 * 32]), w3), b3);
  };
  return { f, inShape: [BATCH, 28, 28, 1] };
}

/**
 * Gradients that make the wasm backend a fair comparison. The union's MatMul gradient multiplies with
 * transposeA/transposeB set, which tfjs-backend-wasm 4.22.0 runs ~10x slower than a transpose and a plain matMul
 * (as ml/gradients.ts does it). And wasm has no Conv2DBackpropFilter kernel, so conv2d cannot be trained there at
 * all; its Conv3D kernels are ~40x slower than Conv2D. The filter gradient of a stride-1 conv is itself a conv,
 * dW[i,j,c,o] = sum_{b,h,w} xpad[b,h+i,w+j,c] dy[b,h,w,o] = conv2d(xpad as [c,H,W,b], dy as [h,w,b,o]).
 */
function registerWasmGradients(tf: typeof TF): void {
  const swap = (t: TF.Tensor) => tf.transpose(t, [...Array(t.rank - 2).keys(), t.rank - 1, t.rank - 2]);
  const one = (dy: TF.Tensor | TF.Tensor[]) => (Array.isArray(dy) ? dy[0]! : dy);
  tf.registerGradient({
    kernelName: 'BatchMatMul',
    inputsToSave: ['a', 'b'],
    gradFunc: (dy, saved, attrs) => {
      const [a, b] = saved as [TF.Tensor, TF.Tensor];
      const A = attrs.transposeA ? swap(a) : a;
      const B = attrs.transposeB ? swap(b) : b;
      const dA = tf.matMul(one(dy), swap(B));
      const dB = tf.matMul(swap(A), one(dy));
      return { a: () => (attrs.transposeA ? swap(dA) : dA), b: () => (attrs.transposeB ? swap(dB) : dB) };
    },
  });
  tf.registerGradient({
    kernelName: 'Conv2D',
    inputsToSave: ['x', 'filter'],
    gradFunc: (dy, saved, attrs) => {
      const [x, filter] = saved as [TF.Tensor4D, TF.Tensor4D];
      const g = one(dy) as TF.Tensor4D;
      const [fh, fw] = filter.shape;
      const strides = ([] as number[]).concat(attrs.strides as number | number[]);
      if (attrs.pad !== 'same' || attrs.dataFormat !== 'NHWC' || strides.some((v) => v !== 1)) {
        throw new Error('bench: the wasm conv2d gradient covers stride 1, same padding, NHWC only');
      }
      const [pt, pl] = [Math.floor((fh - 1) / 2), Math.floor((fw - 1) / 2)];
      return {
        x: () => tf.conv2dTranspose(g, filter, x.shape, 1, 'same'),
        filter: () => {
          const xpad = tf.pad(x, [
            [0, 0],
            [pt, fh - 1 - pt],
            [pl, fw - 1 - pl],
            [0, 0],
          ]);
          const dw = tf.conv2d(tf.transpose(xpad, [3, 1, 2, 0]), tf.transpose(g, [1, 2, 0, 3]), 1, 'valid');
          return tf.transpose(dw, [1, 2, 0, 3]);
        },
      };
    },
  });
}

async function child(root: string, backend: string, kind: Kind): Promise<void> {
  const req = createRequire(path.join(root, 'package.json'));
  const tf = req('@tensorflow/tfjs-core') as typeof TF;
  // tfjs-core's Node bundle registers no gradients; the @tensorflow/tfjs union does.
  req('@tensorflow/tfjs');
  if (backend === 'tensorflow') req(process.env.TFJS_NATIVE_PACKAGE || '@tensorflow/tfjs-node');
  if (backend === 'cpu') req('@tensorflow/tfjs-backend-cpu');
  if (backend === 'wasm') {
    const wasm = req('@tensorflow/tfjs-backend-wasm') as { setWasmPaths: (p: string) => void };
    wasm.setWasmPaths(
      path.dirname(req.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep,
    );
  }
  if (!(await tf.setBackend(backend))) throw new Error(`backend ${backend} did not initialise`);
  if (backend === 'wasm') registerWasmGradients(tf);
  await tf.ready();
  const { f, inShape } = model(tf, kind);
  const x = tf.randomUniform(inShape, 0, 1, 'float32', 7);
  const y = tf.oneHot(tf.randomUniform([BATCH], 0, 10, 'int32', 8) as TF.Tensor1D, 10);
  const opt = tf.train.sgd(0.01);
  const step = () => {
    const loss = opt.minimize(() => tf.losses.softmaxCrossEntropy(y, f(x)) as TF.Scalar, true);
    loss?.dataSync();
    loss?.dispose();
  };
  for (let i = 0; i < 3; i++) step();
  const rates: number[] = [];
  for (let r = 0; r < 3; r++) {
    const t0 = performance.now();
    let n = 0;
    while (performance.now() - t0 < WINDOW_SECONDS * 1000) {
      step();
      n++;
    }
    rates.push((n * BATCH * 1000) / (performance.now() - t0));
  }
  const rounds = rates.map(Math.round);
  const median = [...rounds].sort((a, b) => a - b)[1];
  process.stdout.write(`${JSON.stringify({ backend, kind, samplesPerSec: median, rounds })}\n`);
}

if (process.argv[2] === '--child') {
  child(process.argv[3] ?? '.', process.argv[4] ?? 'tensorflow', (process.argv[5] ?? 'mlp') as Kind).catch(
    (e) => {
      console.error(e);
      process.exit(1);
    },
  );
} else {
  const root = path.resolve(process.argv[2] ?? '.');
  const backends = process.argv.length > 3 ? process.argv.slice(3) : ['tensorflow', 'wasm'];
  for (const kind of ['mlp', 'cnn'] as const) {
    for (const backend of backends) {
      try {
        const out = execFileSync(
          process.execPath,
          ['--import', 'tsx', __filename, '--child', root, backend, kind],
          {
            cwd: root,
            env: { TF_CPP_MIN_LOG_LEVEL: '1', ...process.env },
            stdio: ['ignore', 'pipe', 'inherit'],
          },
        );
        const line =
          out
            .toString()
            .split('\n')
            .filter((l) => l.startsWith('{'))
            .pop() ?? '{}';
        const r = JSON.parse(line) as { samplesPerSec: number; rounds: number[] };
        console.log(
          `${kind.padEnd(4)} ${backend.padEnd(11)} ${String(r.samplesPerSec).padStart(7)} samples/s  (rounds ${r.rounds.join(', ')})`,
        );
      } catch (e) {
        console.log(`${kind.padEnd(4)} ${backend.padEnd(11)} failed: ${(e as Error).message.split('\n')[0]}`);
      }
    }
  }
}
