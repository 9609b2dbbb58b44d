/**
 * Smoke test for the natively built @tensorflow/tfjs-node(-gpu) addon (run by infra/tfjs-native.sh).
 *
 *   node --import tsx infra/tfjs-native/smoke.ts PROJECT_ROOT [@tensorflow/tfjs-node | @tensorflow/tfjs-node-gpu]
 *
 * Loads the package resolved from the project root (as ml/backend.ts does, so it registers with the project's
 * tfjs-core), checks that the 'tensorflow' backend is active, runs a matMul and a conv2d with their gradients
 * there and on the plain JS cpu backend, and compares the two. Exit codes: 0 ok, 1 failure, 3 (gpu package
 * only) the library loads and computes but TensorFlow sees no GPU.
 */
import { createRequire } from 'node:module';
import path from 'node:path';
import type * as TF from '@tensorflow/tfjs-core';

const root = path.resolve(process.argv[2] ?? '.');
const pkg = process.argv[3] ?? '@tensorflow/tfjs-node';
const req = createRequire(path.join(root, 'package.json'));

/** What the native backend exposes beyond KernelBackend (tfjs-node's NodeJSKernelBackend). */
interface NativeBackend {
  binding?: { TF_Version?: string };
  isUsingGpuDevice?: boolean;
}

function fail(msg: string): never {
  console.error(`[tfjs-native smoke] FAILED: ${msg}`);
  process.exit(1);
}

let tfn: { version: Record<string, string>; version_core: string };
try {
  tfn = req(pkg) as typeof tfn;
} catch (e) {
  fail(`require('${pkg}') from ${root}: ${(e as Error).message.split('\n')[0]}`);
}
const tf = req('@tensorflow/tfjs-core') as typeof TF;
req('@tensorflow/tfjs-backend-cpu');
if (tfn.version_core !== tf.version_core || !tf.findBackendFactory('tensorflow')) {
  fail(`${pkg} registered with another copy of @tensorflow/tfjs-core than ${root} resolves; dedupe them`);
}

type Pair = (p: TF.Tensor, q: TF.Tensor) => TF.Tensor;

/** Forward values, and gradients of sum(f(a, b)^2) so that they depend on the forward result. */
function run(backend: string): Record<string, Float32Array> {
  tf.setBackend(backend);
  if (tf.getBackend() !== backend) fail(`could not switch to backend '${backend}'`);
  return tf.tidy(() => {
    const a = tf.randomUniform([64, 96], -1, 1, 'float32', 1);
    const b = tf.randomUniform([96, 32], -1, 1, 'float32', 2);
    const x = tf.randomUniform([4, 12, 12, 3], -1, 1, 'float32', 3) as TF.Tensor4D;
    const w = tf.randomUniform([3, 3, 3, 8], -1, 1, 'float32', 4) as TF.Tensor4D;
    const mm: Pair = (p, q) => tf.matMul(p, q);
    const cv: Pair = (p, q) => tf.relu(tf.conv2d(p as TF.Tensor4D, q as TF.Tensor4D, 1, 'same'));
    const sq = (f: Pair) => (p: TF.Tensor, q: TF.Tensor) => tf.sum(tf.square(f(p, q)));
    const [ga, gb] = tf.grads(sq(mm))([a, b]);
    const [gx, gw] = tf.grads(sq(cv))([x, w]);
    const out: Record<string, TF.Tensor | undefined> = {
      matMul: mm(a, b),
      conv2d: cv(x, w),
      'd matMul/da': ga,
      'd matMul/db': gb,
      'd conv2d/dx': gx,
      'd conv2d/dw': gw,
    };
    const arrays: Record<string, Float32Array> = {};
    for (const [k, t] of Object.entries(out)) {
      if (!t) fail(`${k}: no result`);
      arrays[k] = Float32Array.from(t.dataSync());
    }
    return arrays;
  });
}

const native = run('tensorflow');
const nativeBackend = tf.backend() as unknown as NativeBackend;
const tfVersion = nativeBackend.binding?.TF_Version ?? 'unknown';
const usingGpu = Boolean(nativeBackend.isUsingGpuDevice);
// The cpu backend greets Node users with an advertisement for tfjs-node on first use; not useful here.
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (!String(args[0]).includes('looks like you are running TensorFlow.js in Node.js')) warn(...args);
};
const reference = run('cpu');
console.warn = warn;

let worst = 0;
for (const [k, n] of Object.entries(native)) {
  const r = reference[k];
  if (!r || n.length !== r.length) fail(`${k}: ${n.length} values natively, ${r?.length ?? 0} on cpu`);
  let maxAbs = 0;
  let maxRef = 0;
  for (let i = 0; i < n.length; i++) {
    const nv = n[i] ?? NaN;
    const rv = r[i] ?? NaN;
    if (!Number.isFinite(nv)) fail(`${k}: non-finite value ${nv} at ${i}`);
    maxAbs = Math.max(maxAbs, Math.abs(nv - rv));
    maxRef = Math.max(maxRef, Math.abs(rv));
  }
  const rel = maxAbs / Math.max(maxRef, 1e-30);
  worst = Math.max(worst, rel);
  console.log(
    `[tfjs-native smoke] ${k.padEnd(12)} max|native-cpu| ${maxAbs.toExponential(2)} (relative ${rel.toExponential(2)})`,
  );
  if (!(rel <= 1e-4))
    fail(`${k} differs from the cpu backend by ${rel.toExponential(2)} (relative), more than 1e-4`);
}
tf.setBackend('tensorflow');
console.log(
  `[tfjs-native smoke] ok: ${pkg}@${tfn.version['tfjs-node']} on backend '${tf.getBackend()}', ` +
    `libtensorflow ${tfVersion}, tfjs-core ${tf.version_core}, GPU ${usingGpu ? 'in use' : 'not in use'}, ` +
    `worst relative difference to cpu ${worst.toExponential(2)}`,
);
if (pkg.endsWith('-gpu') && !usingGpu) {
  console.error(
    '[tfjs-native smoke] the GPU build loads and computes, but TensorFlow found no usable GPU ' +
      '(no NVIDIA driver / libcuda.so.1, or no device): it is running on the CPU',
  );
  process.exit(3);
}
