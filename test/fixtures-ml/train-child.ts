/**
 * Child process for backend tests: selects a backend (argv: backend, threads or '-'), trains LeNet a few steps
 * on a small MNIST subset and prints one JSON line with the backend info and a SHA-256 of the final weights.
 * Backends are chosen once per process (wasm's thread count is fixed at instantiation), hence a child.
 */
import { createHash } from 'node:crypto';
import { selectBackend, type BackendName } from '../../ml/backend';
import { loadDataset } from '../../ml/data';
import { train } from '../../ml/train';

async function main(): Promise<void> {
  const [backend = 'wasm', threadsArg = '-'] = process.argv.slice(2);
  const logs: string[] = [];
  const info = await selectBackend({
    prefer: backend as BackendName,
    threads: threadsArg === '-' ? undefined : Number(threadsArg),
    log: (m) => logs.push(m),
  });
  const data = {
    train: loadDataset('mnist', 'train', { limit: 256 }),
    test: loadDataset('mnist', 'test', { limit: 64 }),
  };
  const result = await train(
    {
      model: 'lenet-300-100',
      dataset: 'mnist',
      optimizer: { kind: 'adam', lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8 },
      batchSize: 64,
      iterations: 12,
      evalEvery: 0,
      seed: 7,
    },
    data,
    {},
  );
  const h = createHash('sha256');
  for (const name of Object.keys(result.state.weights).sort()) {
    const d = result.state.weights[name]!.data;
    h.update(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  }
  process.stdout.write(
    JSON.stringify({ info, logs, weightsSha256: h.digest('hex'), loss: result.state.lastLoss }) + '\n',
  );
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.stack : String(e)}\n`);
  process.exit(1);
});
