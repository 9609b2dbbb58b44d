// `lth teachers`: train a teacher (the ordinary training run), precompute its logits into content-addressed
// shards once (precomputeLogitsWorkflow), and inspect a stored logit set: coverage, size, and the teacher's
// accuracy computed from the stored logits alone.
import type { Client } from '@temporalio/client';
import { Command, Option } from 'commander';

import { logitSetAccuracy } from '../../client/logit-sets';
import { bytesPerSample, readLogitManifest, type LogitManifest } from '../../store';
import { connectClient, endpoints, openStore } from '../../workers/connection';
import {
  AUGMENTATION_POLICY_NAMES,
  LOGIT_FORMAT_NAMES,
  parsePrecomputeSpec,
  type PrecomputeResult,
  type PrecomputeSpec,
  type PrecomputeStatus,
} from '../../contract/precompute';
import { startOrAttachPrecompute, type StartedPrecompute } from '../../client/runs';
import { followWithBar } from '../follow';
import { readSpecFile } from '../spec-file';
import { int } from '../spec-flags';
import { parseTrainSpec } from '../../contract/train';
import { workflowLink } from './lottery';
import { configureTrainCommand } from './train';
import { RERUN_OPTION, startOptions, startedText, type RerunFlag } from '../rerun';

interface PrecomputeFlags extends RerunFlag {
  config?: string;
  teacherConfig?: string;
  experiment?: string;
  format?: (typeof LOGIT_FORMAT_NAMES)[number];
  k?: number;
  split?: 'train' | 'test';
  shardSize?: number;
  parallelism?: number;
  augment?: (typeof AUGMENTATION_POLICY_NAMES)[number];
  augmentSeed?: number;
  limit?: number;
  follow: boolean;
  json?: boolean;
}

/** The spec file with the flags applied field by field, validated (errors name the field). */
export function precomputeSpecFromFlags(flags: Omit<PrecomputeFlags, 'follow' | 'json'>): PrecomputeSpec {
  const spec: Record<string, unknown> = flags.config ? readSpecFile(flags.config) : {};
  if (flags.teacherConfig !== undefined) {
    // The teacher's own training spec names it, so its train section is not copied by hand into this one.
    const trained = parseTrainSpec(readSpecFile(flags.teacherConfig));
    const given =
      spec.teacher !== null && typeof spec.teacher === 'object'
        ? (spec.teacher as Record<string, unknown>)
        : {};
    spec.teacher = {
      name: given.name ?? `${trained.train.model}-${trained.train.dataset}`,
      train: trained.train,
    };
    spec.experiment ??= trained.experiment;
  }
  if (flags.experiment !== undefined) spec.experiment = flags.experiment;
  if (flags.format !== undefined) {
    spec.format = flags.format;
    // k belongs to top-k: switching a top-k spec to another format drops it (unless --k insists).
    if (flags.format !== 'top-k' && flags.k === undefined) delete spec.k;
  }
  if (flags.k !== undefined) spec.k = flags.k;
  if (flags.split !== undefined) spec.split = flags.split;
  if (flags.shardSize !== undefined) spec.shardSize = flags.shardSize;
  if (flags.parallelism !== undefined) spec.parallelism = flags.parallelism;
  if (flags.limit !== undefined) spec.limit = flags.limit;
  if (flags.augment !== undefined || flags.augmentSeed !== undefined) {
    const base =
      spec.augmentation !== null && typeof spec.augmentation === 'object'
        ? (spec.augmentation as Record<string, unknown>)
        : {};
    const augmentation: Record<string, unknown> = { ...base };
    if (flags.augment !== undefined) augmentation.policy = flags.augment;
    if (flags.augmentSeed !== undefined) augmentation.seed = flags.augmentSeed;
    spec.augmentation = augmentation;
  }
  return parsePrecomputeSpec(spec);
}

/** A progress bar over shards, fed by the workflow's `status` query every `pollMs`; then the result. */
export async function followPrecompute(
  handle: StartedPrecompute['handle'],
  opts: { pollMs?: number; out?: NodeJS.WriteStream } = {},
): Promise<PrecomputeResult> {
  return followWithBar<PrecomputeStatus, PrecomputeResult>(
    handle,
    {
      format:
        ' {bar} {percentage}% | shard {value}/{total} | computed {computed} | skipped {skipped} | {phase}',
      position: (s) =>
        s.shardCount === null
          ? null
          : {
              value: s.done,
              total: s.shardCount,
              payload: { computed: s.computed, skipped: s.skipped, phase: s.phase },
            },
      final: (r) => {
        const shardCount = r.computedShards + r.skippedShards;
        return {
          value: shardCount,
          total: shardCount,
          payload: { computed: r.computedShards, skipped: r.skippedShards, phase: 'done' },
        };
      },
      showFinalIfNeverStarted: true,
    },
    opts,
  );
}

/** Contiguous index ranges the shards cover, merged, and whether they are exactly 0..sampleCount-1. */
export function coverage(m: LogitManifest): { ranges: [number, number][]; complete: boolean } {
  const sorted = [...m.shards].sort((a, b) => a.start - b.start);
  const ranges: [number, number][] = [];
  let complete = true;
  let expected = 0;
  for (const s of sorted) {
    if (s.start !== expected) complete = false;
    const last = ranges[ranges.length - 1];
    if (last && last[1] === s.start) last[1] = s.end;
    else ranges.push([s.start, s.end]);
    expected = Math.max(expected, s.end);
  }
  if (expected !== m.sampleCount) complete = false;
  return { ranges, complete };
}

export interface LogitSetView {
  manifestKey: string;
  teacher: { name: string; weightsSha256: string };
  dataset: string;
  split: string;
  augmentation: { policy: string; seed: number };
  format: string;
  k?: number;
  classes: number;
  sampleCount: number;
  shardSize: number;
  shardCount: number;
  totalBytes: number;
  bytesPerSample: number;
  /** Half-open index ranges [start, end). */
  coverage: { ranges: [number, number][]; complete: boolean };
  /** A feature-map set (feature distillation): the map's [h, w, c]; absent for logits. */
  features?: number[];
  /** argmax of the stored outputs against the dataset's labels, on the views the teacher saw (null: feature maps). */
  accuracy: { correct: number; total: number; value: number; views: string } | null;
}

export async function inspectLogitSet(
  store: ReturnType<typeof openStore>,
  key: string,
): Promise<LogitSetView> {
  const m = await readLogitManifest(store, key, { verify: 'recorded' });
  // A feature map has no argmax to score: only logit sets report the teacher's accuracy.
  const scored = m.outputs === 'features' ? null : await logitSetAccuracy(store, key, m);
  return {
    manifestKey: key,
    teacher: m.teacher,
    dataset: m.dataset,
    split: m.split,
    augmentation: m.augmentation,
    format: m.format,
    ...(m.k !== undefined ? { k: m.k } : {}),
    classes: m.classes,
    sampleCount: m.sampleCount,
    shardSize: m.shardSize,
    shardCount: m.shards.length,
    totalBytes: m.shards.reduce((s, x) => s + x.bytes, 0),
    bytesPerSample: bytesPerSample(m.format, m.classes, m.k),
    coverage: coverage(m),
    ...(m.outputs === 'features' && m.shape ? { features: m.shape } : {}),
    accuracy: !scored
      ? null
      : {
          ...scored,
          value: scored.correct / scored.total,
          views:
            m.augmentation.policy === 'none'
              ? 'the plain images'
              : `the augmented views it was computed on (${m.augmentation.policy}, seed ${m.augmentation.seed})`,
        },
  };
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 ** 2) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 ** 2).toFixed(1)} MiB`;
}

export function describeLogitSet(v: LogitSetView): string {
  const aug =
    v.augmentation.policy === 'none' ? 'none' : `${v.augmentation.policy}, seed ${v.augmentation.seed}`;
  const ranges = v.coverage.ranges.map(([a, b]) => `${a}..${b - 1}`).join(', ');
  return [
    `${v.features ? 'feature-map set' : 'logit set'} ${v.manifestKey}`,
    `  teacher          ${v.teacher.name}`,
    `                   weights sha256 ${v.teacher.weightsSha256}`,
    `  data             ${v.dataset} ${v.split}, augmentation ${aug}`,
    v.features
      ? `  format           ${v.format}, the last feature map ${v.features.join('×')} (${v.classes} values a sample)`
      : `  format           ${v.format}${v.k !== undefined ? ` (k = ${v.k})` : ''}, ${v.classes} classes`,
    `  samples          ${v.sampleCount}`,
    `  shards           ${v.shardCount} of ${v.shardSize} samples, ${formatBytes(v.totalBytes)} (${v.totalBytes} bytes)`,
    `  bytes/sample     ${v.bytesPerSample}`,
    `  coverage         ${ranges} (${v.coverage.complete ? `complete: 0..${v.sampleCount - 1}, no gaps` : 'GAPS OR OVERLAPS'})`,
    ...(v.accuracy
      ? [
          `  teacher accuracy ${(v.accuracy.value * 100).toFixed(2)}% (${v.accuracy.correct}/${v.accuracy.total}, argmax of ` +
            `the stored outputs on ${v.accuracy.views})`,
        ]
      : []),
  ].join('\n');
}

async function precomputeAction(flags: PrecomputeFlags): Promise<void> {
  const spec = precomputeSpecFromFlags(flags);
  const e = endpoints();
  const client: Client = await connectClient(e);
  try {
    const run = await startOrAttachPrecompute(client, spec, startOptions(flags));
    process.stderr.write(`${startedText(run, flags)} ${run.workflowId}\n`);
    const link = workflowLink(e.temporal.uiUrl, e.temporal.namespace, run.workflowId);
    if (link) process.stderr.write(`  ${link}\n`);
    if (!flags.follow) return;
    const result = await followPrecompute(run.handle);
    const m = await readLogitManifest(openStore(e), result.manifestKey, { verify: 'recorded' });
    const perSample = bytesPerSample(m.format, m.classes, m.k);
    if (flags.json) {
      process.stdout.write(
        `${JSON.stringify({ workflowId: run.workflowId, ...result, bytesPerSample: perSample }, null, 2)}\n`,
      );
      return;
    }
    const shardCount = result.computedShards + result.skippedShards;
    process.stdout.write(
      [
        `logits ${result.manifestKey}${result.reused ? ' (already stored; no teacher work)' : ''}`,
        `  samples          ${result.sampleCount} in ${shardCount} shards`,
        `  shards           ${result.computedShards} computed, ${result.skippedShards} skipped (already stored and valid)`,
        `  bytes/sample     ${perSample} (${m.format}${m.k !== undefined ? `, k = ${m.k}` : ''}, ${m.classes} classes)`,
        `  inspect          lth teachers inspect ${result.manifestKey}`,
      ].join('\n') + '\n',
    );
  } finally {
    await client.connection.close();
  }
}

export function registerTeachersCommand(program: Command): void {
  const teachers = program
    .command('teachers')
    .description('train teachers, precompute their logits into the store once, inspect stored logit sets');

  configureTrainCommand(
    teachers
      .command('train')
      .description(
        'train a teacher: the same command as `lth train` (a teacher is an ordinary durable training run)',
      ),
  );

  teachers
    .command('precompute')
    .description(
      "start (or attach to) a precompute of a trained teacher's logits and follow it shard by shard",
    )
    .option(
      '-c, --config <file>',
      'precompute spec, JSON or YAML (see examples/teachers/precompute-mnist.yaml)',
    )
    .option(
      '-t, --teacher-config <file>',
      "the teacher's training spec (what `lth teachers train` ran): sets teacher.train, and teacher.name to <model>-<dataset> unless the spec names it",
    )
    .option('-e, --experiment <name>', 'experiment label (search attribute Experiment)')
    .addOption(new Option('--format <format>', 'stored format').choices([...LOGIT_FORMAT_NAMES]))
    .option('--k <n>', 'top-k: probabilities kept per sample', int)
    .addOption(new Option('--split <split>', 'dataset split').choices(['train', 'test']))
    .option('--shard-size <n>', 'samples per shard', int)
    .option('--parallelism <n>', 'shards computed at once', int)
    .addOption(
      new Option('--augment <policy>', 'augmentation policy').choices([...AUGMENTATION_POLICY_NAMES]),
    )
    .option('--augment-seed <n>', 'seed of the augmentation views', int)
    .option('--limit <n>', 'a class-balanced subset of N samples', int)
    .option('--no-follow', 'start the precompute and return without waiting')
    .option('--json', 'print the result as JSON')
    .option(...RERUN_OPTION)
    .action(precomputeAction);

  teachers
    .command('inspect')
    .description(
      "a stored logit set: teacher, data, format, size, coverage, and the teacher's accuracy from it",
    )
    .argument('<manifestKey>', 'the manifest key `lth teachers precompute` printed')
    .option('--json', 'print as JSON')
    .action(async (key: string, flags: { json?: boolean }) => {
      const view = await inspectLogitSet(openStore(endpoints()), key);
      process.stdout.write(flags.json ? `${JSON.stringify(view, null, 2)}\n` : `${describeLogitSet(view)}\n`);
    });
}
