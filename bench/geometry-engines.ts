/**
 * A geometry level before and after its products ran as graphs: every measure of one stored solution (a trunk
 * level of bench:imp's seed-0 lineage), at the analysis defaults, one replicate (training subset 0, probe seed 0),
 * in this process, with the objective on the tape (LTH_ENGINE=tape) and as traced graphs, measure by measure in
 * alternation. Each engine's summaries are compared: the graphs are only a speed-up if they give the tape's numbers.
 */
import { weightsAt } from '../activities/analysis';
import { analysisConfigSchema, type AnalysisTarget } from '../contract/analysis';
import { currentBackend } from '../ml/backend';
import { loadDataset } from '../ml/data';
import { MEASURES, MEASURE_NAMES, flatten, modelObjective, type MeasureName } from '../ml/geometry';
import { getModel } from '../ml/models';
import type { ArtifactStore } from '../store';
import { median } from './support';

export interface EngineTiming {
  asked: 'tape' | 'graph';
  /** The engine the objective reported (a graph request where graphs cannot run falls back to the tape). */
  engine: string;
  reason: string | null;
  seconds: Partial<Record<MeasureName, number>>;
  totalSeconds: number;
  summaries: Partial<Record<MeasureName, Record<string, number>>>;
}

const ROUNDS = 2;

export async function timeGeometryEngines(
  store: ArtifactStore,
  target: AnalysisTarget,
  log: (msg: string) => void,
): Promise<{ target: { label: string; level: number; remainingPct: number }; engines: EngineTiming[] }> {
  const config = analysisConfigSchema.parse({});
  const model = getModel(target.model);
  const masks = target.mask
    ? (await store.getTensors(target.mask.key, { expectSha256: target.mask.sha256 })).tensors
    : null;
  const weights = await weightsAt(store, target.weights);
  const trainData = loadDataset(target.dataset, 'train', { limit: config.subset.train });
  const testData = loadDataset(target.dataset, 'test', { limit: config.subset.test });
  const previous = target.previous
    ? {
        weights: await weightsAt(store, target.previous.weights),
        masks: target.previous.mask
          ? (await store.getTensors(target.previous.mask.key, { expectSha256: target.previous.mask.sha256 }))
              .tensors
          : null,
      }
    : null;
  const rewind = target.rewind ? await weightsAt(store, target.rewind) : null;
  const opts = { ...(masks ? { masks } : {}), batchSize: config.batchSize };
  const objectives = (['tape', 'graph'] as const).map((asked) => {
    const before = process.env.LTH_ENGINE;
    process.env.LTH_ENGINE = asked;
    const pair = {
      asked,
      train: modelObjective(model, trainData, opts),
      test: modelObjective(model, testData, opts),
    };
    if (before === undefined) delete process.env.LTH_ENGINE;
    else process.env.LTH_ENGINE = before;
    return pair;
  });
  const engines: EngineTiming[] = objectives.map(({ asked, train }) => ({
    asked,
    engine: train.engine.name,
    reason: train.engine.reason,
    seconds: {},
    totalSeconds: 0,
    summaries: {},
  }));
  try {
    // Measure by measure, the engines in turn (the order swapped each round), so that a slow spell of the machine
    // falls on both; a measure's seconds are its rounds' median.
    for (const measure of MEASURE_NAMES) {
      // twin-path needs a second lineage; every other measure has what it reads here.
      if (measure === 'twin-path') continue;
      const rounds: number[][] = objectives.map(() => []);
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? [0, 1] : [1, 0];
        for (const i of order) {
          const { train, test, asked } = objectives[i] as (typeof objectives)[number];
          const t0 = performance.now();
          const out = await MEASURES[measure](
            {
              train,
              test,
              theta: flatten(train.space, weights),
              seed: config.seed,
              masks,
              rewind: rewind ? flatten(train.space, rewind) : null,
              previous: previous
                ? { theta: flatten(train.space, previous.weights), masks: previous.masks }
                : null,
              twin: null,
              resume: null,
              checkpoint: async () => {},
            },
            config.options[measure] as never,
          );
          const seconds = (performance.now() - t0) / 1000;
          (rounds[i] as number[]).push(seconds);
          (engines[i] as EngineTiming).summaries[measure] = out.summary;
          log(`geometry, ${measure} on the ${asked} engine, round ${round + 1}: ${seconds.toFixed(1)} s`);
        }
      }
      engines.forEach((e, i) => {
        const s = median(rounds[i] as number[]);
        e.seconds[measure] = s;
        e.totalSeconds += s;
      });
    }
  } finally {
    for (const o of objectives) {
      o.train.dispose();
      o.test.dispose();
    }
  }
  // The engine each objective reports after the fact (a computation that could not be traced names itself).
  engines.forEach((e, i) => {
    const o = objectives[i] as (typeof objectives)[number];
    e.engine = o.train.engine.name;
    e.reason = o.train.engine.reason;
  });
  log(`backend ${currentBackend().name}, ${currentBackend().threads ?? 'default'} threads`);
  return { target: { label: target.label, level: target.level, remainingPct: target.remainingPct }, engines };
}
