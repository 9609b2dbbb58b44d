// One-off: the cost of every default measure on one trained LeNet-300-100 level (not committed).
import { selectBackend } from './ml/backend';
import { loadDataset } from './ml/data';
import { MEASURES, MEASURE_INPUTS, MEASURE_NAMES, flatten, modelObjective, replicatePlan } from './ml/geometry';
import { analysisConfigSchema } from './contract/analysis';
import { getModel } from './ml/models';
import { train } from './ml/train';
const info = await selectBackend({ prefer: 'tensorflow', threads: 1, log: () => {} });
const model = getModel('lenet-300-100');
const cfg = { model: 'lenet-300-100', dataset: 'mnist' as const, optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0 }, batchSize: 128, iterations: 1000, evalEvery: 0, seed: 0 };
const data = { train: loadDataset('mnist', 'train'), test: loadDataset('mnist', 'test', { limit: 1000 }) };
const r = await train(cfg, data, {});
const config = analysisConfigSchema.parse({});
const test = modelObjective(model, loadDataset('mnist', 'test', { limit: 1000 }), { batchSize: 1000 });
const out: Record<string, number> = {};
let total = 0;
for (const m of MEASURE_NAMES) {
  if (MEASURE_INPUTS[m].requires && m !== 'rewind-path') continue;
  const plan = MEASURE_INPUTS[m].replicated ? replicatePlan(0, config.replicates) : [{ subset: 0, seed: 0 }];
  const t = performance.now();
  for (const run of plan) {
    const tr = modelObjective(model, loadDataset('mnist', 'train', { limit: 1000, offset: run.subset * 1000 }), { batchSize: 1000 });
    const theta = flatten(tr.space, r.state.weights);
    const o = await MEASURES[m]({ train: tr, test, theta, seed: run.seed, masks: null, rewind: flatten(tr.space, model.init(0)), previous: null, twin: null, resume: null, checkpoint: async () => {} }, config.options[m] as never);
    if (run === plan[0]) console.log(m, JSON.stringify(o.summary).slice(0, 300));
    tr.dispose();
  }
  out[m] = (performance.now() - t) / 1000;
  total += out[m]!;
  console.log(m, out[m]!.toFixed(1), 's', plan.length, 'runs');
}
console.log('backend', info.name, 'total', total.toFixed(1), 's', JSON.stringify(out));
