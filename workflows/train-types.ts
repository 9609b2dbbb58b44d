// Small JSON values that cross the workflow/activity boundary. Tensors never do.
import type { TrainSpec } from './specs';

export interface ArtifactRef {
  key: string;
  sha256: string;
  bytes: number;
}

export interface TrainProgressUpdate {
  step: number;
  totalSteps: number;
  epoch: number;
  loss: number | null;
  testAccuracy: number | null;
  testLoss: number | null;
  /** Key of the last checkpoint written, if any. */
  checkpointKey: string | null;
  backend: string;
}

export interface TrainActivityInput {
  spec: TrainSpec;
  /** Workflow that receives progress signals; null when the activity runs on its own. */
  progressWorkflowId: string | null;
}

export interface TrainRunResult {
  runId: string;
  weights: ArtifactRef;
  metricsKey: string;
  manifestKey: string;
  backend: string;
  steps: number;
  final: { testAccuracy: number; testLoss: number; trainLoss: number; trainAccuracy: number };
  evals: { step: number; testAccuracy: number; testLoss: number }[];
  /** True when the run had already finished and its stored result was returned. */
  reused: boolean;
  /** Step the last attempt resumed from (0 for a fresh start). */
  resumedFromStep: number;
}

export type TrainPhase = 'queued' | 'training' | 'done' | 'failed';

export interface TrainStatus {
  phase: TrainPhase;
  experiment: string;
  progress: TrainProgressUpdate | null;
  result: TrainRunResult | null;
}
