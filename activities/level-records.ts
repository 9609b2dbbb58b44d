// The store of IMP levels: experiments/<lineage>/level-<L>/{rewind,mask,weights}.safetensors, metrics.json and,
// last, manifest.json whose `result` is the level's record. A level's start (mask and rewind state) is written
// before it trains, so a retry trains from the same bits; a level is finished exactly when its manifest exists.
import { z } from 'zod';

import { levelRecordSchema, type LevelRecord } from '../contract/lottery';
import type { ObjectRef } from '../contract/spec';
import type { NamedTensors } from '../ml/host-tensor';
import type { SparsityReport } from '../ml/pruning';
import { stateFromTensors, stateToTensors, type TrainState } from '../ml/train';
import { experimentMetricsKey, levelManifestKey, levelTensorKey, type ArtifactStore } from '../store';
import { jsonSafe } from '../contract/stored-numbers';

const levelManifestSchema = z.object({ kind: z.literal('imp-level'), result: levelRecordSchema });

/** A level asked for before the level it derives from: an orchestration bug that no retry can fix. */
export class LevelNotFinishedError extends Error {
  readonly nonRetryable = true;
  override readonly name = 'LevelNotFinishedError';
}

/** A level's record without what publishing it adds (its weights' ref and its keys). */
export type LevelOutcome = Omit<LevelRecord, 'weights' | 'metricsKey' | 'manifestKey'>;

export function createLevelRecords(store: ArtifactStore) {
  async function read(lineageId: string, level: number): Promise<LevelRecord | null> {
    const key = levelManifestKey(lineageId, level);
    if (!(await store.exists(key))) return null;
    return levelManifestSchema.parse(await store.readManifest(key)).result;
  }

  return {
    read,

    /**
     * The backend the level's manifest records, read without verifying the objects it lists (what a damaged level
     * was computed on); null when the manifest itself is gone or unreadable.
     */
    async recordedBackend(lineageId: string, level: number): Promise<string | null> {
      try {
        return (await store.getJson(levelManifestKey(lineageId, level), levelManifestSchema)).result.backend;
      } catch {
        return null;
      }
    },

    /**
     * Unpublishes a damaged level: its manifest first (from then on the level reads as not finished, so any run
     * recomputes it), then `damaged`, the object that failed verification. The others are rewritten by the
     * recomputation with the same bytes.
     */
    async unpublish(lineageId: string, level: number, damaged: string): Promise<void> {
      await store.remove(levelManifestKey(lineageId, level));
      if (damaged !== levelManifestKey(lineageId, level)) await store.remove(damaged);
    },

    /** The finished level, or LevelNotFinishedError naming it (`what`: whose level, for the message). */
    async require(lineageId: string, level: number, what: string): Promise<LevelRecord> {
      const found = await read(lineageId, level);
      if (!found) {
        throw new LevelNotFinishedError(
          `${what} level ${level} (${levelManifestKey(lineageId, level)}) has not finished; it must be trained first`,
        );
      }
      return found;
    },

    async tensors(ref: ObjectRef): Promise<NamedTensors> {
      return (await store.getTensors(ref.key, { expectSha256: ref.sha256 })).tensors;
    },

    /** A stored training state (a rewind point). */
    async state(ref: ObjectRef): Promise<TrainState> {
      const { tensors, metadata } = await store.getTensors(ref.key, { expectSha256: ref.sha256 });
      return stateFromTensors(tensors, metadata);
    },

    /** Writes the level's starting state and mask, before it trains. */
    async putStart(
      lineageId: string,
      level: number,
      start: TrainState,
      masks: NamedTensors,
      sparsity: SparsityReport,
    ): Promise<{ rewind: ObjectRef; mask: ObjectRef }> {
      const { tensors, metadata } = stateToTensors(start);
      const rewind = await store.putTensors(levelTensorKey(lineageId, level, 'rewind'), tensors, {
        ...metadata,
        lineageId,
        level: String(level),
      });
      const mask = await store.putTensors(levelTensorKey(lineageId, level, 'mask'), masks, {
        lineageId,
        level: String(level),
        remaining: String(sparsity.remaining),
        total: String(sparsity.total),
      });
      return { rewind, mask };
    },

    /** Writes the trained level: its weights, metrics.json (the record and `about` it), and the manifest last. */
    async publish(
      outcome: LevelOutcome,
      weights: NamedTensors,
      about: Record<string, unknown>,
    ): Promise<LevelRecord> {
      const { lineageId, level } = outcome;
      const weightsRef = await store.putTensors(levelTensorKey(lineageId, level, 'weights'), weights, {
        lineageId,
        level: String(level),
        step: String(outcome.steps),
        backend: outcome.backend,
      });
      const record: LevelRecord = {
        ...outcome,
        weights: weightsRef,
        metricsKey: experimentMetricsKey(lineageId, level),
        manifestKey: levelManifestKey(lineageId, level),
      };
      const metrics = await store.putJson(record.metricsKey, jsonSafe({ ...record, ...about }));
      await store.publishManifest(record.manifestKey, {
        kind: 'imp-level',
        entries: [outcome.rewind, outcome.mask, weightsRef, metrics],
        result: jsonSafe(record),
      });
      return record;
    },
  };
}

export type LevelRecords = ReturnType<typeof createLevelRecords>;
