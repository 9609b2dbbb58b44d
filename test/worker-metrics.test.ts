// Workers' Prometheus metrics, scraped during a real run: the compute worker's endpoint serves the Temporal
// runtime's metrics and ours (training step, loss and throughput; checkpoint seconds and bytes; store requests),
// the light worker's the runtime's; a bad port is refused naming the variable.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { startOrAttachTrain } from '../client/runs';
import { parseTrainSpec } from '../contract/train';
import { metricsBindAddress } from '../workers/metrics';
import { freePorts } from './support/ports';
import { testEndpoints } from './support/env';
import { tinyLenetTrain } from './support/specs';
import { startTestWorkers } from './support/workers';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function scrape(port: number): Promise<string> {
  const res = await fetch(`http://127.0.0.1:${port}/metrics`);
  assert.equal(res.status, 200);
  return res.text();
}

/** The value of the first sample of `name` whose labels contain `labels`, or null. */
function sample(text: string, name: string, labels = ''): number | null {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (labels && !line.includes(labels)) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return null;
}

test('the metrics port comes from the environment, and a bad one is refused naming the variable', () => {
  assert.equal(metricsBindAddress('compute', {}), null);
  assert.equal(metricsBindAddress('compute', { LTH_METRICS_PORT: '9464' }), '127.0.0.1:9464');
  assert.equal(
    metricsBindAddress('light', { LTH_LIGHT_METRICS_PORT: '9465', LTH_METRICS_HOST: '0.0.0.0' }),
    '0.0.0.0:9465',
  );
  assert.throws(
    () => metricsBindAddress('compute', { LTH_METRICS_PORT: 'http' }),
    /LTH_METRICS_PORT must be a port/,
  );
});

test('a training run shows up in the compute worker metrics while it runs, with the runtime metrics beside it', async () => {
  const [computePort, lightPort] = await freePorts(2);
  const workers = await startTestWorkers(testEndpoints(), {
    LTH_METRICS_PORT: String(computePort),
    LTH_LIGHT_METRICS_PORT: String(lightPort),
  });
  try {
    const spec = parseTrainSpec({
      experiment: `metrics${Date.now().toString(36)}`,
      train: tinyLenetTrain(41, { iterations: 400, evalEvery: 200 }),
      checkpointEvery: 50,
    });
    const run = await startOrAttachTrain(workers.client, spec);
    let during: string | null = null;
    for (let i = 0; i < 200 && !during; i++) {
      const text = await scrape(computePort!);
      const step = sample(text, 'lth_train_step');
      if (step !== null && step > 0 && step < 400) during = text;
      else await sleep(100);
    }
    assert.ok(during, 'lth_train_step never showed a step of the running training');
    assert.ok((sample(during, 'lth_train_samples_per_second') ?? 0) > 0);
    assert.ok(Number.isFinite(sample(during, 'lth_train_loss')));
    await run.handle.result();
    const after = await scrape(computePort!);
    const ours = after
      .split('\n')
      .filter((l) => l.startsWith('lth_') && !l.includes('_bucket'))
      .join('\n');
    assert.ok((sample(after, 'lth_checkpoint_seconds_count') ?? 0) >= 1, `checkpoints timed:\n${ours}`);
    assert.ok((sample(after, 'lth_checkpoint_bytes_sum') ?? 0) > 100_000, 'checkpoint bytes');
    assert.ok(
      (sample(after, 'lth_store_request_seconds_count', 'op="putTensors"') ?? 0) >= 1,
      'store requests',
    );
    assert.match(after, /^temporal_\w+/m, "the runtime's own metrics");
    assert.match(after, /^temporal_activity_execution_latency\w*\{/m);
    const light = await scrape(lightPort!);
    assert.match(light, /^temporal_workflow_completed\w*\{/m);
  } finally {
    await workers.stop();
  }
});
