/**
 * The training loop.
 *
 * Exact resume rests on one rule: everything a step does is a function of (config, data, weights, optimizer
 * slots, step). The batch of step s (0-based) is slice [(s mod E)·B, …) of epochOrder(n, seed, floor(s/E)) with
 * E = ceil(n/B); Adam's bias correction uses s+1; evaluations happen after steps 0 (before training), every
 * evalEvery and the last, each recorded before the checkpoint of the same step is taken. A checkpoint after step
 * s therefore holds everything, and resuming runs steps s+1… exactly as the uninterrupted run would have.
 */
import * as tf from '@tensorflow/tfjs-core';
import { augmentImages } from '../data/augment.js';
import { epochOrder, type Dataset } from '../data/index.js';
import '../gradients.js';
import { MlInputError, TrainingAbortedError, TrainingStoppedError } from '../errors.js';
import { getModel, inputOf } from '../models/index.js';
import type { ModelDef, NoiseSeed } from '../models/types.js';
import { deriveSeed } from '../rng.js';
import { assertHostTensor, hostTensor, toHostAsync, type HostTensor, type NamedTensors } from '../tensors.js';
import { batchHost, batchTensors, crossEntropy, evaluateTensors } from './evaluate.js';
import { slotsZeroWherePruned } from '../native/dense-step.js';
import {
  applyMask,
  selectEngine,
  type EngineFamily,
  type EngineStep,
  type StepEngine,
} from './engines/index.js';
import { slotSpecs } from './optimizers.js';
import { lrFactor } from './schedule.js';
import {
  cursorAt,
  dataCursorSchema,
  parseTrainConfig,
  stepsPerEpoch,
  type DataCursor,
  type EvalRecord,
  type TrainConfig,
  type TrainProgress,
  type TrainResult,
  type TrainState,
} from './types.js';

type Tensors = Record<string, tf.Tensor>;

/** A batch as a step sees it: its samples, the epoch they are drawn in, and the images to train on. */
export interface StepBatch<E> {
  indices: Int32Array;
  labels: Int32Array;
  /** The same labels as an int32 tensor, made before the step (a loss must not upload step data itself). */
  labelTensor: tf.Tensor1D;
  x: tf.Tensor;
  /** What the objective prepared for these samples (e.g. the teachers' stored targets). */
  extras: E;
  /** The step's dropout/drop-path seed: pass it to the model (a pure function of the run's seed and the step). */
  noise: NoiseSeed;
}

/**
 * What a step minimises, when it is not the cross-entropy of the model's prediction (e.g. distillation). Everything
 * it uses must be a pure function of (indices, epoch), so that a resumed run sees exactly what it would have seen.
 */
export interface StepObjective<E> {
  /** Awaited before the step: reads what the batch needs (stored teacher targets, ...). */
  prepare(indices: Int32Array, epoch: number): Promise<E>;
  /** The batch's images, row-major [b, ...inputShape] (e.g. an augmented view); default the dataset's. */
  images?(indices: Int32Array, epoch: number, extras: E): Float32Array;
  /** The step's loss, inside the step's tidy (tensors made here are freed after it). */
  loss(model: ModelDef, params: Tensors, batch: StepBatch<E>): tf.Scalar;
  /**
   * Every tensor of `extras` the loss reads, by name. With it the step may run as a graph (ml/train/engines/graph.ts),
   * which takes these as inputs; so the loss must read step data only from them, `batch.x` and `batch.labelTensor`
   * (a value it uploads itself becomes a constant of the graph). Without it the objective runs on the tape.
   */
  feeds?(extras: E): Tensors;
  /** Frees what `prepare` made; called after the step. */
  release?(extras: E): void;
}

export interface TrainOptions {
  /**
   * The model to train, when it is not the registry's `config.model` itself (e.g. a ViT student with distillation
   * tokens, built by vitModel); its name is recorded, the registry's name stays the config's.
   */
  model?: ModelDef;
  /** What each step minimises; default the cross-entropy of the prediction with the labels. */
  objective?: StepObjective<unknown>;
  /** Starting weights (e.g. rewound ones); default model.init(config.seed). Ignored when resumeFrom is given. */
  initialWeights?: NamedTensors;
  /** 1 = keep, 0 = pruned, keyed by parameter name; any host dtype. Pass the same masks again on resume. */
  masks?: NamedTensors;
  resumeFrom?: TrainState;
  checkpointEvery?: number;
  onCheckpoint?: (state: TrainState) => Promise<void>;
  onProgress?: (p: TrainProgress) => void;
  signal?: AbortSignal;
  /**
   * Polled between batches; when it returns true the loop checkpoints the current step through
   * `onCheckpoint` and throws TrainingStoppedError (a worker draining before preemption).
   */
  stopRequested?: () => boolean;
  /** Report progress every this many steps (default 10); eval and final steps are always reported. */
  progressEvery?: number;
  /** Batch size for evaluation passes (default 1000); does not change results beyond float summation order. */
  evalBatchSize?: number;
  /**
   * Steps (1..iterations) after which the full state is handed to onSnapshot, awaited before training goes on:
   * a rewind point is stored before any later checkpoint can exist. Steps at or before a resume point are skipped.
   */
  snapshotAt?: readonly number[];
  onSnapshot?: (state: TrainState) => Promise<void>;
  /**
   * The engine family the run must compute on, where the caller knows it better than the state: a checkpoint read
   * back from the store without an engine field was computed on the tape; a damaged run recomputed (healed) takes
   * the family its record names. Default: the state's own (resumeFrom.engine), else the fastest exact engine.
   */
  engine?: 'tape' | 'graph';
}

function checkShape(what: string, t: HostTensor, shape: readonly number[]): void {
  try {
    assertHostTensor(t, what);
  } catch (e) {
    throw new MlInputError((e as Error).message, { cause: e });
  }
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new MlInputError(`${what}: shape [${t.shape.join(', ')}], expected [${shape.join(', ')}]`);
  }
}

function checkWeights(model: ModelDef, weights: NamedTensors, what: string): void {
  const expected = new Set(model.params.map((p) => p.name));
  for (const name of Object.keys(weights)) {
    if (!expected.has(name)) throw new MlInputError(`${what}: '${name}' is not a parameter of ${model.name}`);
  }
  for (const p of model.params) {
    const t = weights[p.name];
    if (!t) throw new MlInputError(`${what}: missing '${p.name}'`);
    if (t.dtype !== 'float32') throw new MlInputError(`${what}: '${p.name}' is ${t.dtype}, expected float32`);
    checkShape(`${what} '${p.name}'`, t, p.shape);
  }
}

/** Masks as float32 0/1 host tensors, validated against the model. */
function normaliseMasks(model: ModelDef, masks: NamedTensors): NamedTensors {
  const out: NamedTensors = {};
  for (const [name, m] of Object.entries(masks)) {
    const p = model.params.find((q) => q.name === name);
    if (!p) throw new MlInputError(`mask '${name}' does not name a parameter of ${model.name}`);
    checkShape(`mask '${name}'`, m, p.shape);
    const f = hostTensor('float32', p.shape);
    for (let i = 0; i < m.data.length; i++) {
      const v = m.data[i] as number;
      if (v !== 0 && v !== 1)
        throw new MlInputError(`mask '${name}' holds ${v} at ${i}; masks must be 0 or 1`);
      f.data[i] = v;
    }
    out[name] = f;
  }
  return out;
}

function checkDataset(model: ModelDef, config: TrainConfig, data: Dataset, role: string): void {
  if (data.name !== config.dataset) {
    throw new MlInputError(`${role} data is '${data.name}' but the config says '${config.dataset}'`);
  }
  const size = data.height * data.width * data.channels;
  const expected = model.inputShape.reduce((a, b) => a * b, 1);
  if (size !== expected)
    throw new MlInputError(`${role} images have ${size} values, ${model.name} takes ${expected}`);
  if (data.numClasses !== model.numClasses) {
    throw new MlInputError(
      `${role} data has ${data.numClasses} classes, ${model.name} outputs ${model.numClasses}`,
    );
  }
  if (data.images.length !== data.n * size || data.labels.length !== data.n) {
    throw new MlInputError(`${role} data arrays do not match n=${data.n}`);
  }
  if (data.n < 1) throw new MlInputError(`${role} data is empty`);
  if (config.trainLimit !== undefined && role === 'train' && data.n > config.trainLimit) {
    throw new MlInputError(`train data has ${data.n} samples but trainLimit is ${config.trainLimit}`);
  }
  if (config.testLimit !== undefined && role === 'test' && data.n > config.testLimit) {
    throw new MlInputError(`test data has ${data.n} samples but testLimit is ${config.testLimit}`);
  }
}

/**
 * Holds the live tensors of one training run and takes single steps. The `train` loop is built on it; the
 * benchmark uses it directly to time steps without evaluation.
 */
export class Trainer {
  readonly model: ModelDef;
  readonly config: TrainConfig;
  readonly stepsPerEpoch: number;
  /** λ(step) of the run's learning-rate schedule; null for a constant rate. */
  private readonly lrAt: ((it: number) => number) | null;
  /** Computes the steps and holds the parameters and optimizer slots (ml/train/engines/). */
  private readonly engine: StepEngine;
  /** Why the engine is not the one LTH_ENGINE asked for, where it is not. */
  private readonly engineNote: string | null;
  /** What the steps minimise, as the engine was chosen for it. */
  private readonly objectiveKind: 'none' | 'fed' | 'opaque';
  /** float32 0/1 masks by parameter name. */
  private keep: Tensors = {};
  private readonly names: string[];
  private _step: number;
  private orderCache: { epoch: number; order: Int32Array } | null = null;
  private lossTensor: tf.Scalar | null = null;
  private _lastLoss: number | null;

  constructor(
    config: TrainConfig,
    private readonly data: Dataset,
    init: {
      weights: NamedTensors;
      optimizer?: NamedTensors;
      masks?: NamedTensors;
      step?: number;
      lastLoss?: number | null;
      model?: ModelDef;
      /**
       * Whether steps minimise an objective of their own (distillation) instead of the cross-entropy: 'fed' where it
       * declares the tensors it reads (StepObjective.feeds), so that it may run as a graph.
       */
      objective?: 'fed' | 'opaque';
      /** The engine family of the state the run continues from (TrainState.engine); absent for fresh weights. */
      continues?: EngineFamily;
    },
  ) {
    this.config = parseTrainConfig(config);
    this.model = init.model ?? getModel(this.config.model, inputOf(data));
    checkDataset(this.model, this.config, data, 'train');
    this.stepsPerEpoch = stepsPerEpoch(data.n, this.config.batchSize);
    this.lrAt = this.config.schedule
      ? lrFactor(this.config.schedule, {
          stepsPerEpoch: this.stepsPerEpoch,
          iterations: this.config.iterations,
        })
      : null;
    this.names = this.model.params.map((p) => p.name);
    this._step = init.step ?? 0;
    this._lastLoss = init.lastLoss ?? null;
    checkWeights(this.model, init.weights, 'weights');
    const masks = init.masks ? normaliseMasks(this.model, init.masks) : {};

    const specs = slotSpecs(this.config.optimizer, this.model.params);
    if (init.optimizer) {
      const want = new Set(specs.map((s) => s.name));
      for (const name of Object.keys(init.optimizer)) {
        if (!want.has(name)) {
          throw new MlInputError(
            `optimizer state has '${name}', which ${this.config.optimizer.kind} ` +
              `(momentum=${'momentum' in this.config.optimizer ? this.config.optimizer.momentum : '-'}) does not use`,
          );
        }
      }
      for (const s of specs) {
        const t = init.optimizer[s.name];
        if (!t)
          throw new MlInputError(`optimizer state lacks '${s.name}' needed by ${this.config.optimizer.kind}`);
        if (t.dtype !== 'float32')
          throw new MlInputError(`optimizer state '${s.name}' is ${t.dtype}, expected float32`);
        checkShape(`optimizer state '${s.name}'`, t, s.shape);
      }
    }

    this.objectiveKind = init.objective ?? 'none';
    const params: Tensors = {};
    const slots: Tensors = {};
    try {
      for (const p of this.model.params) {
        const w = init.weights[p.name] as HostTensor;
        const m = masks[p.name];
        const raw = tf.tensor(w.data.slice(), w.shape, 'float32');
        if (m) {
          // Same zeroing as after every step, so the initial weights obey the mask bit for bit.
          this.keep[p.name] = tf.tensor(m.data.slice(), m.shape, 'float32');
          params[p.name] = applyMask(raw, this.keep[p.name]);
          raw.dispose();
        } else {
          params[p.name] = raw;
        }
      }
      for (const s of specs) {
        const t = init.optimizer?.[s.name];
        slots[s.name] = t ? tf.tensor(t.data.slice(), s.shape, 'float32') : tf.zeros(s.shape, 'float32');
      }
      const chosen = selectEngine({
        model: this.model,
        optimizer: this.config.optimizer,
        objective: this.objectiveKind,
        masked: Object.keys(this.keep),
        remask: !slotsZeroWherePruned(init.optimizer ?? {}, masks),
        ...(init.continues ? { continues: init.continues } : {}),
        scheduled: this.config.schedule !== undefined,
      });
      this.engine = chosen.engine;
      this.engineNote = chosen.note;
      this.engine.load(params, slots);
    } catch (e) {
      tf.dispose([...Object.values(params), ...Object.values(slots), ...Object.values(this.keep)]);
      this.keep = {};
      throw e;
    }
  }

  /** The engine the steps run on, and what a person should know about how they ran. */
  get engineInfo(): { name: StepEngine['name']; family: EngineFamily; notes: string[] } {
    return {
      name: this.engine.name,
      family: this.engine.family,
      notes: [...(this.engineNote ? [this.engineNote] : []), ...this.engine.notes()],
    };
  }

  get step(): number {
    return this._step;
  }

  get maskedNames(): string[] {
    return Object.keys(this.keep);
  }

  /** Indices of the samples in the batch of (0-based) step s. */
  batchIndices(s: number): Int32Array {
    const epoch = Math.floor(s / this.stepsPerEpoch);
    const k = s % this.stepsPerEpoch;
    if (!this.orderCache || this.orderCache.epoch !== epoch) {
      this.orderCache = { epoch, order: epochOrder(this.data.n, this.config.seed, epoch) };
    }
    const start = k * this.config.batchSize;
    return this.orderCache.order.subarray(start, Math.min(start + this.config.batchSize, this.data.n));
  }

  /** The epoch the batch of (0-based) step s is drawn in. */
  epochOf(s: number): number {
    return Math.floor(s / this.stepsPerEpoch);
  }

  /**
   * Takes one optimizer step, minimising `objective` (prepared for this step's batch) or else the cross-entropy.
   * The loss stays on the device until someone asks (see readLoss).
   */
  trainStep<E>(objective?: { def: StepObjective<E>; extras: E }): void {
    // The engine was chosen for what the steps minimise: a graph must not meet a loss it cannot feed.
    const kind = objective ? (objective.def.feeds ? 'fed' : 'opaque') : 'none';
    if (kind !== this.objectiveKind && !(kind === 'fed' && this.objectiveKind === 'opaque'))
      throw new MlInputError(
        `this trainer was made for objective '${this.objectiveKind}' (Trainer init.objective) and was given a step ` +
          `with objective '${kind}'`,
      );
    const smoothing = this.config.labelSmoothing ?? 0;
    if (objective && smoothing > 0)
      throw new MlInputError(
        'labelSmoothing smooths the cross-entropy of plain training; a distillation objective has its own targets',
      );
    const augmentation = this.config.augmentation;
    if (objective && augmentation)
      throw new MlInputError(
        "augmentation gives plain training its views; a distillation objective brings its own (the teachers' views)",
      );
    const s = this._step;
    const indices = this.batchIndices(s);
    const noise: NoiseSeed = { seed: deriveSeed(this.config.seed, 'noise', s) };
    const def = objective?.def;
    const input: EngineStep = {
      s,
      lrFactor: this.lrAt ? this.lrAt(s) : null,
      keep: this.keep,
      host: () => {
        const h = batchHost(this.model, this.data, indices, smoothing);
        return {
          ...h,
          ...(augmentation ? { x: augmentImages(this.data, indices, augmentation, this.epochOf(s)) } : {}),
          b: indices.length,
        };
      },
      tensors: () => {
        const { x: plain, y, labels } = batchTensors(this.model, this.data, indices, smoothing);
        const images = augmentation
          ? augmentImages(this.data, indices, augmentation, this.epochOf(s))
          : objective?.def.images?.(indices, this.epochOf(s), objective.extras);
        let x = plain;
        if (images) {
          plain.dispose();
          x = tf.tensor(images, [indices.length, ...this.model.inputShape], 'float32');
        }
        // A stochastic model's noise, drawn before the step: a graph takes it as an input.
        const drawn = this.model.stochastic ? this.model.noiseTensors?.(noise, indices.length) : undefined;
        const withNoise = drawn ? { noise: drawn } : {};
        if (!objective) return { x, y, ...withNoise };
        return {
          x,
          y,
          labels: tf.tensor1d(labels, 'int32'),
          feeds: objective.def.feeds?.(objective.extras) ?? {},
          ...withNoise,
        };
      },
      loss:
        objective && def
          ? (p, t) =>
              def.loss(this.model, p, {
                indices,
                labels: Int32Array.from(indices, (i) => this.data.labels[i] as number),
                labelTensor: t.labels as tf.Tensor1D,
                x: t.x,
                extras: objective.extras,
                noise: t.noise ? { ...noise, tensors: t.noise } : noise,
              })
          : this.model.stochastic
            ? (p, t) =>
                crossEntropy(
                  this.model.forward(p, t.x, true, t.noise ? { ...noise, tensors: t.noise } : noise),
                  t.y as tf.Tensor2D,
                )
            : null,
    };
    const loss = this.engine.step(input);
    this.lossTensor?.dispose();
    this.lossTensor = loss;
    this._lastLoss = null;
    this._step = s + 1;
  }

  /** Loss of the latest step (null before the first). Reading syncs with the device, so callers do it sparingly. */
  async readLoss(): Promise<number | null> {
    if (this.lossTensor) {
      this._lastLoss = (await this.lossTensor.data())[0] as number;
      this.lossTensor.dispose();
      this.lossTensor = null;
    }
    return this._lastLoss;
  }

  async evaluate(data: Dataset, batchSize?: number): Promise<{ loss: number; accuracy: number }> {
    return evaluateTensors(this.model, this.engine.read().params, data, batchSize);
  }

  cursor(): DataCursor {
    return cursorAt(this._step, this.config.seed, this.data.n, this.config.batchSize);
  }

  /** A deep copy of the state; nothing in it aliases live tensors or earlier copies. */
  async snapshot(evals: readonly EvalRecord[]): Promise<TrainState> {
    const lastLoss = await this.readLoss();
    const { params, slots } = this.engine.read();
    const weights: NamedTensors = {};
    for (const n of this.names) weights[n] = await toHostAsync(params[n] as tf.Tensor);
    const optimizer: NamedTensors = {};
    for (const [n, t] of Object.entries(slots)) optimizer[n] = await toHostAsync(t);
    return {
      step: this._step,
      weights,
      optimizer,
      rng: this.cursor(),
      evals: evals.map((e) => ({ ...e })),
      lastLoss,
      engine: this.engine.family,
    };
  }

  dispose(): void {
    this.engine.dispose();
    tf.dispose(Object.values(this.keep));
    this.lossTensor?.dispose();
    this.keep = {};
    this.lossTensor = null;
  }
}

function validateResume(config: TrainConfig, trainData: Dataset, state: TrainState): void {
  const r = dataCursorSchema.safeParse(state.rng);
  if (!r.success)
    throw new MlInputError(`resume state: rng is not a data cursor: ${r.error.issues[0]?.message}`);
  const c = r.data;
  const expected = cursorAt(state.step, config.seed, trainData.n, config.batchSize);
  const mismatch = (['seed', 'trainSize', 'batchSize', 'epoch', 'position'] as const).filter(
    (k) => c[k] !== expected[k],
  );
  if (mismatch.length > 0) {
    throw new MlInputError(
      `resume state does not belong to this run: ${mismatch
        .map((k) => `rng.${k} is ${c[k]}, this config/data implies ${expected[k]}`)
        .join('; ')}`,
    );
  }
  if (state.step > config.iterations) {
    throw new MlInputError(
      `resume state is at step ${state.step}, past the run's ${config.iterations} iterations`,
    );
  }
}

/** Pruned weights must already be zero in a checkpoint of a masked run; otherwise the masks are not the run's. */
function validateResumeMasks(state: TrainState, masks: NamedTensors | undefined): void {
  if (!masks) return;
  for (const [name, m] of Object.entries(masks)) {
    const w = state.weights[name];
    if (!w) continue;
    for (let i = 0; i < m.data.length; i++) {
      if (m.data[i] === 0 && w.data[i] !== 0) {
        throw new MlInputError(
          `resume state has a non-zero weight where mask '${name}' is 0 (index ${i}): ` +
            'the masks given are not the ones this run was trained with',
        );
      }
    }
  }
}

export async function train(
  config: TrainConfig,
  data: { train: Dataset; test: Dataset },
  opts: TrainOptions = {},
): Promise<TrainResult> {
  const cfg = parseTrainConfig(config);
  const model = opts.model ?? getModel(cfg.model);
  checkDataset(model, cfg, data.train, 'train');
  checkDataset(model, cfg, data.test, 'test');
  const checkpointEvery = opts.checkpointEvery ?? 0;
  if (!Number.isInteger(checkpointEvery) || checkpointEvery < 0) {
    throw new MlInputError(`checkpointEvery must be a non-negative integer, got ${opts.checkpointEvery}`);
  }
  if (checkpointEvery > 0 && !opts.onCheckpoint)
    throw new MlInputError('checkpointEvery given without onCheckpoint');
  const snapshotAt = new Set(opts.snapshotAt ?? []);
  for (const k of snapshotAt) {
    if (!Number.isInteger(k) || k < 1 || k > cfg.iterations) {
      throw new MlInputError(`snapshotAt: ${k} is not a step in 1..${cfg.iterations}`);
    }
  }
  if (snapshotAt.size > 0 && !opts.onSnapshot) throw new MlInputError('snapshotAt given without onSnapshot');
  const progressEvery = opts.progressEvery ?? 10;
  if (!Number.isInteger(progressEvery) || progressEvery < 1) {
    throw new MlInputError(`progressEvery must be a positive integer, got ${opts.progressEvery}`);
  }

  const resume = opts.resumeFrom;
  if (resume) {
    validateResume(cfg, data.train, resume);
    validateResumeMasks(resume, opts.masks);
  }
  const trainer = new Trainer(cfg, data.train, {
    weights: resume ? resume.weights : (opts.initialWeights ?? model.init(cfg.seed)),
    optimizer: resume?.optimizer,
    masks: opts.masks,
    step: resume?.step ?? 0,
    lastLoss: resume?.lastLoss ?? null,
    ...(opts.model ? { model: opts.model } : {}),
    ...(opts.objective ? { objective: opts.objective.feeds ? ('fed' as const) : ('opaque' as const) } : {}),
    // A run continues from a state on the state's engine family (or the one it is told): exact by its own record.
    ...((opts.engine ?? resume?.engine) ? { continues: opts.engine ?? resume?.engine } : {}),
  });
  const evals: EvalRecord[] = resume ? resume.evals.map((e) => ({ ...e })) : [];
  const total = cfg.iterations;
  const evalDue = (s: number) => s === 0 || s === total || (cfg.evalEvery > 0 && s % cfg.evalEvery === 0);
  const checkAbort = (s: number) => {
    if (opts.signal?.aborted) throw new TrainingAbortedError(s, { cause: opts.signal.reason });
  };

  const runEval = async (s: number): Promise<EvalRecord> => {
    const r = await trainer.evaluate(data.test, opts.evalBatchSize);
    const rec = { step: s, testLoss: r.loss, testAccuracy: r.accuracy };
    evals.push(rec);
    return rec;
  };
  const report = async (s: number, rec: EvalRecord | null) => {
    if (!opts.onProgress) return;
    const loss = await trainer.readLoss();
    const p: TrainProgress = {
      step: s,
      totalSteps: total,
      epoch: s / trainer.stepsPerEpoch,
      loss: loss ?? NaN,
    };
    if (rec) {
      p.testLoss = rec.testLoss;
      p.testAccuracy = rec.testAccuracy;
    }
    opts.onProgress(p);
  };

  try {
    checkAbort(trainer.step);
    // A fresh run (or a state saved before its first eval) evaluates its starting point once.
    if (evalDue(trainer.step) && !evals.some((e) => e.step === trainer.step)) {
      await report(trainer.step, await runEval(trainer.step));
    }
    while (trainer.step < total) {
      // Let heartbeats, cancellation and I/O run between batches.
      await new Promise<void>((resolve) => setImmediate(resolve));
      checkAbort(trainer.step);
      const objective = opts.objective;
      if (objective) {
        const extras = await objective.prepare(
          trainer.batchIndices(trainer.step),
          trainer.epochOf(trainer.step),
        );
        try {
          trainer.trainStep({ def: objective, extras });
        } finally {
          objective.release?.(extras);
        }
      } else {
        trainer.trainStep();
      }
      const s = trainer.step;
      const rec = evalDue(s) ? await runEval(s) : null;
      if (rec || s % progressEvery === 0 || s === total) await report(s, rec);
      if (snapshotAt.has(s) && opts.onSnapshot) await opts.onSnapshot(await trainer.snapshot(evals));
      const checkpointDue = checkpointEvery > 0 && s % checkpointEvery === 0;
      if (checkpointDue && opts.onCheckpoint) {
        await opts.onCheckpoint(await trainer.snapshot(evals));
      }
      if (s < total && opts.stopRequested?.() && opts.onCheckpoint) {
        if (!checkpointDue) await opts.onCheckpoint(await trainer.snapshot(evals));
        throw new TrainingStoppedError(s);
      }
    }
    const state = await trainer.snapshot(evals);
    const last = evals[evals.length - 1];
    if (!last || last.step !== state.step)
      throw new Error(`internal: no evaluation recorded at step ${state.step}`);
    const trainEval = await trainer.evaluate(data.train, opts.evalBatchSize);
    const engine = trainer.engineInfo;
    return {
      engine: { name: engine.name, notes: engine.notes },
      state,
      final: {
        testLoss: last.testLoss,
        testAccuracy: last.testAccuracy,
        trainLoss: trainEval.loss,
        trainAccuracy: trainEval.accuracy,
      },
      evals: evals.map((e) => ({ ...e })),
    };
  } finally {
    trainer.dispose();
  }
}
