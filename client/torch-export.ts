// A stored weights object in PyTorch's layout and names (`lth export`): the run's final weights, an IMP level's
// weights, or any checkpoint's weights. Which architecture the tensors are is read from the object and its run,
// never guessed when two could fit.
import { z } from 'zod';

import { toTorch, torchMetadata } from '../ml/export';
import { getModel, vitModel, type ModelDef } from '../ml/models';
import { MODEL_NAMES } from '../ml/models/names';
import type { NamedTensors } from '../ml/host-tensor';
import { storedWeights } from '../ml/train';
import { runMetricsKey, type ArtifactStore } from '../store';

/** The tensors the PyTorch model loads and the header that says which model they are for. */
export interface TorchExport {
  model: ModelDef;
  stateDict: NamedTensors;
  metadata: Record<string, string>;
}

// A distillation student's configuration lives in its run's metrics.json (`spec.student`), not in the registry.
const studentMetricsSchema = z.object({
  spec: z.object({ kind: z.literal('distill'), student: z.record(z.string(), z.unknown()) }),
  config: z.object({ model: z.string() }),
});

function sameParams(model: ModelDef, weights: NamedTensors): boolean {
  const names = Object.keys(weights);
  return (
    names.length === model.params.length &&
    model.params.every((p) => {
      const t = weights[p.name];
      return (
        t !== undefined && t.shape.length === p.shape.length && t.shape.every((d, i) => d === p.shape[i])
      );
    })
  );
}

async function studentOfRun(store: ArtifactStore, runId: string): Promise<ModelDef | null> {
  const key = runMetricsKey(runId);
  if (!(await store.exists(key))) return null;
  const parsed = studentMetricsSchema.safeParse(await store.getJson(key, z.unknown()));
  if (!parsed.success) return null;
  return vitModel(parsed.data.config.model, parsed.data.spec.student as Parameters<typeof vitModel>[1]);
}

/**
 * The architecture of `weights`: the model named by `explicit`, else a distillation run's student, else the
 * model the object's header names, else the one registered model whose parameters match by name and shape.
 */
export async function resolveModel(
  store: ArtifactStore,
  weights: NamedTensors,
  metadata: Record<string, string>,
  explicit?: string,
): Promise<ModelDef> {
  const candidates: ModelDef[] = [];
  if (explicit !== undefined) candidates.push(getModel(explicit));
  else {
    const student = metadata.runId ? await studentOfRun(store, metadata.runId) : null;
    if (student) candidates.push(student);
    else if (metadata.model) candidates.push(getModel(metadata.model));
    else candidates.push(...MODEL_NAMES.map((m) => getModel(m)));
  }
  const fits = candidates.filter((m) => sameParams(m, weights));
  if (fits.length === 1) return fits[0] as ModelDef;
  const found = Object.entries(weights)
    .slice(0, 4)
    .map(([n, t]) => `${n} [${t.shape.join(', ')}]`)
    .join(', ');
  if (fits.length === 0) {
    throw new Error(
      `the tensors (${found}${Object.keys(weights).length > 4 ? ', ...' : ''}) are not the parameters of ` +
        `${candidates.map((m) => m.name).join(' or ')}; name the model with --model`,
    );
  }
  throw new Error(`the tensors fit ${fits.map((m) => m.name).join(' and ')}; name the model with --model`);
}

/** The stored object `key` as a PyTorch state_dict of its model. */
export async function exportTorch(
  store: ArtifactStore,
  key: string,
  opts: { model?: string } = {},
): Promise<TorchExport> {
  const { tensors, metadata, ref } = await store.getTensors(key);
  const weights = storedWeights(tensors, metadata);
  const model = await resolveModel(store, weights, metadata, opts.model);
  return {
    model,
    stateDict: toTorch(model, weights),
    metadata: {
      ...torchMetadata(model),
      source: key,
      sourceSha256: ref.sha256,
      ...(metadata.step !== undefined ? { step: metadata.step } : {}),
    },
  };
}
