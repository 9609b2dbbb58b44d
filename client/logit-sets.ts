// A stored logit set checked against its dataset: the teacher's accuracy computed from the stored logits alone,
// for `lth teachers inspect` and bench/logits.ts. Reads the store and the dataset's labels (ml/); no Temporal.
import { loadDataset, type DatasetName } from '../ml/data';
import { LogitReader, type ArtifactStore, type LogitManifest } from '../store';

/**
 * Argmax of every stored row against the labels of the data the set was computed on. A precompute with `limit`
 * stores the class-balanced subset loadDataset(name, split, {limit}) gives, so loading with limit = sampleCount
 * reproduces it (and gives the whole split when sampleCount is its size).
 */
export async function logitSetAccuracy(
  store: ArtifactStore,
  key: string,
  m: LogitManifest,
): Promise<{ correct: number; total: number }> {
  const data = loadDataset(m.dataset as DatasetName, m.split as 'train' | 'test', { limit: m.sampleCount });
  if (data.n !== m.sampleCount)
    throw new Error(
      `${m.dataset} ${m.split} has ${data.n} samples, the logit set ${key} has ${m.sampleCount}: cannot match labels`,
    );
  const reader = await LogitReader.open(store, [key], {
    dataset: m.dataset,
    split: m.split,
    augmentation: m.augmentation,
  });
  try {
    let correct = 0;
    const C = m.classes;
    const chunk = Math.max(m.shardSize, 1024);
    for (let start = 0; start < m.sampleCount; start += chunk) {
      const end = Math.min(start + chunk, m.sampleCount);
      const indices = Int32Array.from({ length: end - start }, (_, i) => start + i);
      const values = (await reader.read(indices)).teachers[0]!.values;
      for (let r = 0; r < indices.length; r++) {
        let best = 0;
        for (let c = 1; c < C; c++) if (values[r * C + c]! > values[r * C + best]!) best = c;
        if (best === data.labels[start + r]) correct++;
      }
    }
    return { correct, total: m.sampleCount };
  } finally {
    await reader.close();
  }
}
