// Prometheus metrics of a worker process, on one port: the Temporal runtime's own (task latencies, slots, polls:
// `temporal_*`) and ours (`lth_*`: training throughput, loss, step and level; checkpoint seconds and bytes; the
// store's request latency and errors; each name carries its unit), recorded through the runtime's metric meter so that its exporter serves
// both. Off unless a port is given: LTH_METRICS_PORT for compute workers, LTH_LIGHT_METRICS_PORT for light ones.
import type { MetricMeter } from '@temporalio/common';
import { z } from 'zod';

import type { ActivityMetrics } from '../activities/metrics';
import type { ArtifactStore } from '../store';

const portSchema = z.coerce.number().int().min(1).max(65_535);

/** `host:port` to serve metrics on, from the environment; null when metrics are off. */
export function metricsBindAddress(
  role: 'compute' | 'light',
  env: NodeJS.ProcessEnv = process.env,
): string | null {
  const name = role === 'compute' ? 'LTH_METRICS_PORT' : 'LTH_LIGHT_METRICS_PORT';
  const raw = env[name]?.trim();
  if (!raw) return null;
  const port = portSchema.safeParse(raw);
  if (!port.success) throw new Error(`${name} must be a port number 1..65535; got '${raw}'`);
  return `${env.LTH_METRICS_HOST?.trim() || '127.0.0.1'}:${port.data}`;
}

/** The runtime's telemetry options for Runtime.install: its Prometheus exporter on `bindAddress`. */
export function prometheusTelemetry(bindAddress: string) {
  return {
    metrics: {
      prometheus: {
        bindAddress,
        countersTotalSuffix: true,
        unitSuffix: true,
        useSecondsForDurations: true,
        // Checkpoints are megabytes: the default buckets are for seconds.
        histogramBucketOverrides: { lth_checkpoint_bytes: [1e4, 1e5, 1e6, 1e7, 1e8, 1e9] },
      },
    },
  };
}

export function activityMetrics(meter: MetricMeter): ActivityMetrics {
  const samples = meter.createGauge(
    'lth_train_samples_per_second',
    'float',
    '',
    'training throughput of a run',
  );
  const loss = meter.createGauge('lth_train_loss', 'float', '', 'loss of the last training batch of a run');
  const step = meter.createGauge('lth_train_step', 'int', '', 'training step a run has reached');
  const ckptSeconds = meter.createHistogram(
    'lth_checkpoint_seconds',
    'float',
    '',
    'time to write a checkpoint',
  );
  const ckptBytes = meter.createHistogram('lth_checkpoint_bytes', 'int', '', 'size of a written checkpoint');
  const level = meter.createGauge('lth_lottery_level', 'int', '', 'latest finished IMP level of a lineage');
  const remaining = meter.createGauge(
    'lth_lottery_remaining_pct',
    'float',
    '',
    '% of weights left at that level',
  );
  return {
    training(run, p) {
      const tags = { run };
      step.set(p.step, tags);
      if (p.loss !== null && Number.isFinite(p.loss)) loss.set(p.loss, tags);
      if (p.samplesPerSec !== null && Number.isFinite(p.samplesPerSec)) samples.set(p.samplesPerSec, tags);
    },
    checkpoint(seconds, bytes) {
      ckptSeconds.record(seconds);
      ckptBytes.record(bytes);
    },
    level(lineage, source, l, pct) {
      level.set(l, { lineage, source });
      remaining.set(pct, { lineage, source });
    },
  };
}

/**
 * The store with every request timed (`lth_store_request_seconds{op}`) and every failure counted
 * (`lth_store_errors_total{op,error}`). Calls inside the store (putTensors → putBytes) are not counted twice: the
 * wrapped methods run on the store itself.
 */
export function instrumentedStore(store: ArtifactStore, meter: MetricMeter): ArtifactStore {
  const latency = meter.createHistogram(
    'lth_store_request_seconds',
    'float',
    '',
    'artifact store request time',
  );
  const errors = meter.createCounter('lth_store_errors', '', 'failed artifact store requests');
  return new Proxy(store, {
    get(target, prop, receiver) {
      const value: unknown = Reflect.get(target, prop, receiver);
      if (typeof value !== 'function' || typeof prop !== 'string') return value;
      const method = value as (...a: unknown[]) => unknown;
      return (...args: unknown[]) => {
        const started = performance.now();
        const out = method.apply(target, args);
        if (!(out instanceof Promise)) return out;
        return out.then(
          (v: unknown) => {
            latency.record((performance.now() - started) / 1000, { op: prop });
            return v;
          },
          (err: unknown) => {
            latency.record((performance.now() - started) / 1000, { op: prop });
            errors.add(1, { op: prop, error: err instanceof Error ? err.name : 'unknown' });
            throw err;
          },
        );
      };
    },
  });
}
