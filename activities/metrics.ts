// What the activities report to a metrics backend, as plain calls: the worker binds them to its Temporal runtime's
// Prometheus exporter (workers/metrics.ts); tests and tools that run activities without one pass nothing.
export interface ActivityMetrics {
  /** A training run's latest position: step, loss of the last batch, and throughput since the previous report. */
  training(run: string, p: { step: number; loss: number | null; samplesPerSec: number | null }): void;
  /** A checkpoint written: how long the upload took and how many bytes. */
  checkpoint(seconds: number, bytes: number): void;
  /** An IMP level finished (trunk or branch). */
  level(lineage: string, source: string, level: number, remainingPct: number): void;
}
