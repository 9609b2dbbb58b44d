// Healing the teacher outputs a distillation reads. A shard that fails verification (against its own checksum or
// the one its manifest lists) or is gone, and a set whose manifest is damaged or gone, are recomputed from their
// inputs (the teacher's weights and the dataset) by the precompute's own code (logits.ts createLogitSets), so that a
// healed shard has the bytes the precompute gave it.
//
// A logit manifest does not record the backend that computed its set, but it lists every shard's SHA-256: a
// recomputed shard is stored again only when it hashes to that, so the student reads exactly what an undisturbed run
// read; one that differs (the set was computed on another backend) fails the run with UnderivableError instead of
// training on other targets. A set given to the distillation by its key, or whose inputs are damaged themselves (the
// teacher's run or weights), cannot be recomputed here: UnderivableError names the key and what to do.
import type { PrecomputeSpec } from '../contract/precompute';
import { logitManifestSchema, sha256Hex, type LogitManifest } from '../store';
import type { DurableTrainingDeps } from './durable-training';
import { damagedKey, REPAIR_NEXT, UnderivableError } from './heal';
import { createLogitSets } from './logits';

/** The precompute spec that makes the set `manifestKey` for this distillation, or null when it was given by key. */
export type DeriveLogitSet = (manifestKey: string) => Promise<PrecomputeSpec | null>;

/** Where a damaged object sits in the sets being read: a whole set (its manifest), or one shard of a set. */
type Damaged =
  | { manifestKey: string; shard: null }
  | { manifestKey: string; shard: { index: number; sha256: string; bytes: number }; manifest: LogitManifest };

export function createLogitHealer(deps: Pick<DurableTrainingDeps, 'store' | 'log'>, derive: DeriveLogitSet) {
  const { store } = deps;
  // Its own caches of the split and the weights: they live as long as this distillation attempt, and are only
  // filled if something needs healing.
  const sets = createLogitSets(deps);
  const healed: string[] = [];

  /** The set whose manifest is `key`, or that lists the shard `key`; null when none of `manifestKeys` does. */
  async function locate(manifestKeys: readonly string[], key: string): Promise<Damaged | null> {
    if (manifestKeys.includes(key)) return { manifestKey: key, shard: null };
    for (const manifestKey of manifestKeys) {
      let manifest: LogitManifest;
      try {
        // The manifest alone (its own checksum), not its entries: one of them is the damaged shard.
        manifest = await store.getJson(manifestKey, logitManifestSchema);
      } catch (err) {
        if (damagedKey(err) === null) throw err;
        continue;
      }
      const index = manifest.shards.findIndex((s) => s.key === key);
      const ref = manifest.shards[index];
      if (ref) return { manifestKey, shard: { index, sha256: ref.sha256, bytes: ref.bytes }, manifest };
    }
    return null;
  }

  /** Damage met while recomputing `key` is damage to its inputs: it cannot be derived. */
  function inputDamaged(key: string, err: unknown): never {
    const input = damagedKey(err);
    if (input === null || input === key) throw err;
    throw new UnderivableError(
      input,
      `'${key}' is damaged and cannot be recomputed: its input '${input}' is damaged too (${(err as Error).message})`,
      REPAIR_NEXT,
    );
  }

  async function recompute(spec: PrecomputeSpec, at: Damaged, key: string): Promise<void> {
    const plan = await sets.planRefOf(spec, undefined);
    if (at.shard === null) {
      // The manifest is damaged or gone: the set is made as the precompute makes it, keeping the shards that
      // verify, and published again (the same shards give the same manifest).
      const shardCount = Math.ceil(plan.sampleCount / spec.shardSize);
      const shards = [];
      for (let i = 0; i < shardCount; i++) shards.push(await sets.shard(spec, i, plan));
      await sets.publish(spec, shards, plan);
      return;
    }
    const { body } = await sets.computeShard(spec, at.shard.index, plan);
    const sha256 = sha256Hex(body);
    if (sha256 !== at.shard.sha256 || body.length !== at.shard.bytes) {
      throw new UnderivableError(
        key,
        `logit shard '${key}' of ${at.manifestKey} is damaged and cannot be recomputed here: recomputed on this worker it hashes to ${sha256} (${body.length} bytes), the manifest lists ${at.shard.sha256} (${at.shard.bytes} bytes), so the set was computed on another backend and a recomputation would not give the targets the student learns from`,
        `run the distillation on a compute worker of the backend that precomputed the set (\`lth worker --backend <name>\`); or ${REPAIR_NEXT}, which recomputes the whole set here`,
      );
    }
    await store.putBytes(key, body);
  }

  return {
    /** Keys recomputed so far, in order. */
    healed,

    /**
     * Recomputes what `err` says is damaged or missing in the sets `manifestKeys`, or rethrows it: an error that is
     * not damage, damage outside these sets, or a key already healed once (damaged again: something else is wrong).
     */
    async heal(manifestKeys: readonly string[], err: unknown): Promise<void> {
      const key = damagedKey(err);
      if (key === null || healed.includes(key)) throw err;
      const at = await locate(manifestKeys, key);
      if (at === null) throw err;
      let spec: PrecomputeSpec | null;
      try {
        spec = await derive(at.manifestKey);
      } catch (e) {
        inputDamaged(key, e);
      }
      if (spec === null) {
        throw new UnderivableError(
          key,
          `'${key}' is damaged and cannot be recomputed: its set ${at.manifestKey} was given to the distillation by its key, not made from a teacher's training spec (${(err as Error).message})`,
          `precompute the set again (\`lth teachers precompute\`) or give the teacher by its training spec; ${REPAIR_NEXT}`,
        );
      }
      deps.log(
        `healing '${key}': ${at.shard === null ? 'the manifest of a logit set' : `shard ${at.shard.index} of ${at.manifestKey}`} is damaged (${(err as Error).message}); recomputing it from the teacher's weights and the dataset`,
      );
      try {
        await recompute(spec, at, key);
      } catch (e) {
        inputDamaged(key, e);
      }
      healed.push(key);
    },
  };
}

export type LogitHealer = ReturnType<typeof createLogitHealer>;
