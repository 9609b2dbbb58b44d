/**
 * Errors caused by bad input (invalid config, wrong shapes, a corrupt or mismatched checkpoint). Retrying cannot
 * fix them, so they carry `nonRetryable = true`, which the activity layer turns into a non-retryable failure
 * without ml/ knowing about Temporal.
 */
export class MlInputError extends Error {
  readonly nonRetryable = true;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'MlInputError';
  }
}

/** Thrown when an AbortSignal stops training; `name` is 'AbortError' like the platform's own. */
export class TrainingAbortedError extends Error {
  constructor(step: number, options?: { cause?: unknown }) {
    super(`training aborted at step ${step}`, options);
    this.name = 'AbortError';
  }
}

/**
 * Thrown after `stopRequested` asked the loop to stop and the state at that step was handed to
 * `onCheckpoint`: the run can be resumed from exactly there.
 */
export class TrainingStoppedError extends Error {
  constructor(readonly step: number) {
    super(`training stopped at step ${step} after a checkpoint`);
    this.name = 'TrainingStoppedError';
  }
}

/**
 * A run's state was computed by an engine this process cannot run (ml/train/engines/): continuing on another would
 * not give the run's bytes. Retrying here cannot help; a worker that has the engine can.
 */
export class EngineUnavailableError extends MlInputError {
  constructor(message: string) {
    super(message);
    this.name = 'EngineUnavailableError';
  }
}
