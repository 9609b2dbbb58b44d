/**
 * TrainState <-> (tensors, string metadata), the shape of a safetensors file: tensors under `weights/<param>` and
 * `optimizer/<slot>`, everything else as strings in the header's __metadata__. Numbers that JSON cannot hold
 * (NaN, ±Infinity from a diverged run) are written as strings so that a state always round-trips exactly.
 */
import { z } from 'zod';
import { MlInputError } from '../errors.js';
import { assertHostTensor, cloneHost, type HostTensor, type NamedTensors } from '../tensors.js';
import { dataCursorSchema, zodMessage, type EvalRecord, type TrainState } from './types.js';

export const TRAIN_STATE_FORMAT = 'lth.train-state.v1';
const WEIGHTS = 'weights/';
const OPTIMIZER = 'optimizer/';

function encodeNumber(x: number): number | string {
  return Number.isFinite(x) ? x : String(x);
}

const numberLike = z.union([
  z.number(),
  z.enum(['NaN', 'Infinity', '-Infinity']).transform((s) => Number(s)),
]);

const evalsSchema = z.array(
  z.object({ step: z.number().int().min(0), testLoss: numberLike, testAccuracy: numberLike }).strict(),
);

export function stateToTensors(state: TrainState): {
  tensors: NamedTensors;
  metadata: Record<string, string>;
} {
  const tensors: NamedTensors = {};
  for (const [k, v] of Object.entries(state.weights)) tensors[WEIGHTS + k] = cloneHost(v);
  for (const [k, v] of Object.entries(state.optimizer)) tensors[OPTIMIZER + k] = cloneHost(v);
  const metadata: Record<string, string> = {
    format: TRAIN_STATE_FORMAT,
    step: String(state.step),
    rng: JSON.stringify(state.rng),
    evals: JSON.stringify(
      state.evals.map((e) => ({
        step: e.step,
        testLoss: encodeNumber(e.testLoss),
        testAccuracy: encodeNumber(e.testAccuracy),
      })),
    ),
    lastLoss: state.lastLoss === null ? 'null' : String(state.lastLoss),
    // Written only for the graph family, so that a tape state's bytes are what they always were.
    ...(state.engine === 'graph' ? { engine: state.engine } : {}),
  };
  return { tensors, metadata };
}

function field<T>(metadata: Record<string, string>, name: string, parse: (raw: string) => T): T {
  const raw = metadata[name];
  if (typeof raw !== 'string') throw new MlInputError(`invalid train state: metadata.${name} is missing`);
  try {
    return parse(raw);
  } catch (e) {
    if (e instanceof MlInputError) throw e;
    throw new MlInputError(`invalid train state: metadata.${name}: ${(e as Error).message}`, { cause: e });
  }
}

function parseJsonWith<T>(name: string, raw: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch (e) {
    throw new MlInputError(`invalid train state: metadata.${name} is not JSON: ${(e as Error).message}`);
  }
  const r = schema.safeParse(value);
  if (!r.success) throw new MlInputError(zodMessage(`invalid train state: metadata.${name}`, r.error));
  return r.data;
}

export function stateFromTensors(tensors: NamedTensors, metadata: Record<string, string>): TrainState {
  if (metadata === null || typeof metadata !== 'object')
    throw new MlInputError('invalid train state: no metadata');
  const format = metadata.format;
  if (format !== TRAIN_STATE_FORMAT) {
    throw new MlInputError(
      `invalid train state: metadata.format is ${format === undefined ? 'missing' : `'${format}'`}, ` +
        `expected '${TRAIN_STATE_FORMAT}'`,
    );
  }
  const step = field(metadata, 'step', (raw) => {
    if (!/^(0|[1-9][0-9]*)$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
      throw new Error(`expected a non-negative integer, got '${raw}'`);
    }
    return Number(raw);
  });
  const rng = field(metadata, 'rng', (raw) => parseJsonWith('rng', raw, dataCursorSchema));
  const evals: EvalRecord[] = field(metadata, 'evals', (raw) => parseJsonWith('evals', raw, evalsSchema));
  evals.forEach((e, i) => {
    if (e.step > step)
      throw new MlInputError(`invalid train state: metadata.evals[${i}].step ${e.step} > step ${step}`);
    const prev = evals[i - 1];
    if (prev && prev.step >= e.step)
      throw new MlInputError(`invalid train state: metadata.evals steps not increasing`);
  });
  const lastLoss = field(metadata, 'lastLoss', (raw) => {
    if (raw === 'null') return null;
    const x = Number(raw);
    if (raw.trim() === '' || (Number.isNaN(x) && raw !== 'NaN'))
      throw new Error(`expected a number or null, got '${raw}'`);
    return x;
  });
  if (step === 0 && lastLoss !== null)
    throw new MlInputError('invalid train state: metadata.lastLoss set at step 0');

  const weights: NamedTensors = {};
  const optimizer: NamedTensors = {};
  for (const [name, t] of Object.entries(tensors)) {
    try {
      assertHostTensor(t, `tensor '${name}'`);
    } catch (e) {
      throw new MlInputError(`invalid train state: ${(e as Error).message}`, { cause: e });
    }
    if (t.dtype !== 'float32') {
      throw new MlInputError(`invalid train state: tensor '${name}' is ${t.dtype}, expected float32`);
    }
    const copy: HostTensor = cloneHost(t);
    if (name.startsWith(WEIGHTS) && name.length > WEIGHTS.length) weights[name.slice(WEIGHTS.length)] = copy;
    else if (name.startsWith(OPTIMIZER) && name.length > OPTIMIZER.length)
      optimizer[name.slice(OPTIMIZER.length)] = copy;
    else throw new MlInputError(`invalid train state: tensor '${name}' is neither weights/… nor optimizer/…`);
  }
  if (Object.keys(weights).length === 0) throw new MlInputError('invalid train state: no weights/… tensors');
  const engine = metadata.engine;
  if (engine !== undefined && engine !== 'graph')
    throw new MlInputError(
      `invalid train state: metadata.engine is '${engine}', expected 'graph' or absent (the tape)`,
    );
  return { step, weights, optimizer, rng, evals, lastLoss, ...(engine ? { engine } : {}) };
}

/**
 * The model weights of a stored object: a whole training state (a checkpoint, a rewind point) holds them under
 * `weights/`; a run's or a level's weights object is the weights alone.
 */
export function storedWeights(tensors: NamedTensors, metadata: Record<string, string>): NamedTensors {
  if (metadata.format !== TRAIN_STATE_FORMAT) return tensors;
  const out: NamedTensors = {};
  for (const [name, t] of Object.entries(tensors)) {
    if (name.startsWith(WEIGHTS)) out[name.slice(WEIGHTS.length)] = t;
  }
  return out;
}
