// What a spec kind is: a kind of run a person starts from a spec file (`lth train`, `lth lottery`, ...), and the
// workflow that runs it. One file each, one line in index.ts; sweeps and the CLI read everything from here.
export interface SpecKind<S, R = unknown> {
  kind: string;
  /** One line for help texts. */
  summary: string;
  /** Whether a spec file's object is of this kind, from its shape. */
  recognises(raw: Record<string, unknown>): boolean;
  /** The full check of a spec before anything starts; SpecError names every offending field. */
  parse(input: unknown): S;
  /** The workflow that runs a spec of this kind (the light worker registers it under this name). */
  workflowType: string;
  /** Derived from the spec: starting the same spec twice attaches to the run that exists. */
  workflowId(spec: S): string;
  /** The `RunKind` search attribute of its workflow. */
  runKind: string;
  /** The experiment label of a parsed spec (the `Experiment` search attribute). */
  experiment(spec: S): string;
  /** One line saying what a run of this spec is (the workflow's summary in the Temporal UI). */
  describe(spec: S): string;
  /** The arguments its workflow is started with. */
  workflowArgs(spec: S): unknown[];
  /** A finished run's headline numbers, by name: what a sweep's result table lists for each trial. */
  metrics(result: R): Record<string, number>;
}
