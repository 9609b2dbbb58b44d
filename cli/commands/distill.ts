// `lth distill`: start (or attach to) a distillation of a ViT student from its teachers and follow it. Teachers
// given by their training spec whose logits are not stored yet are trained and precomputed first, as child
// workflows; the bar follows the student's training.
import { Command, InvalidArgumentError, Option } from 'commander';

import { startOrAttachDistill } from '../../client/runs';
import { parseDistillSpec, type DistillResult, type DistillSpec } from '../../contract/distill';
import { KD_MODES } from '../../ml/distill/modes';
import { connectClient, endpoints } from '../../workers/connection';
import { describeResult, followTrain } from '../follow';
import { readSpecFile } from '../spec-file';
import { addTrainOptions, applyTrainFlags, int, num, type TrainFieldFlags } from '../spec-flags';
import { RERUN_OPTION, startOptions, startedText, type RerunFlag } from '../rerun';

interface DistillFlags extends TrainFieldFlags, RerunFlag {
  config?: string;
  experiment?: string;
  mode?: string;
  temperature?: number;
  features?: string;
  featureWeight?: number;
  checkpointEvery?: number;
  follow: boolean;
  json?: boolean;
}

/** The spec file with the flags applied field by field, then checked whole. */
export function distillSpecFromFlags(flags: Omit<DistillFlags, 'follow' | 'json'>): DistillSpec {
  const base = flags.config ? readSpecFile(flags.config) : {};
  const spec: Record<string, unknown> = {
    ...base,
    train: applyTrainFlags(base.train ?? { model: 'vit-tiny' }, flags),
  };
  if (flags.experiment !== undefined) spec.experiment = flags.experiment;
  if (flags.checkpointEvery !== undefined) spec.checkpointEvery = flags.checkpointEvery;
  // The student alone: the spec's teachers have nothing to teach it.
  if (flags.mode === 'none') spec.teachers = [];
  const changesKd = [flags.mode, flags.temperature, flags.features, flags.featureWeight].some(
    (v) => v !== undefined,
  );
  if (changesKd) {
    const kd: Record<string, unknown> =
      base.kd !== null && typeof base.kd === 'object' ? { ...(base.kd as Record<string, unknown>) } : {};
    if (flags.mode !== undefined) kd.mode = flags.mode;
    if (flags.temperature !== undefined) kd.temperature = flags.temperature;
    if (flags.features !== undefined || flags.featureWeight !== undefined) {
      const given = kd.features !== null && typeof kd.features === 'object' ? (kd.features as object) : {};
      kd.features = {
        ...given,
        ...(flags.features !== undefined ? { teacher: flags.features } : {}),
        ...(flags.featureWeight !== undefined ? { weight: flags.featureWeight } : {}),
      };
    }
    if (flags.mode === 'none') delete kd.features;
    spec.kd = kd;
  }
  return parseDistillSpec(spec);
}

function describeDistill(
  result: DistillResult,
  workflowId: string,
  uiUrl: string | null,
  ns: string,
): string {
  const teachers = result.teachers.flatMap((t) => [
    `  teacher ${t.name.padEnd(9)} ${t.manifestKeys.length > 0 ? t.manifestKeys.join(', ') : `online, run ${t.trainRunId}`}`,
    ...(t.featureKeys ? [`  features ${t.name.padEnd(8)} ${t.featureKeys.join(', ')}`] : []),
  ]);
  const healed =
    result.healed && result.healed.length > 0 ? [`  [recomputed damaged: ${result.healed.join(', ')}]`] : [];
  return [describeResult(result, workflowId, uiUrl, ns), ...teachers, ...healed].join('\n');
}

export function registerDistillCommand(program: Command): void {
  const cmd = program
    .command('distill')
    .description('start (or attach to) the distillation of a ViT student from its teachers, and follow it')
    .option('-c, --config <file>', 'distill spec, JSON or YAML (examples/distill/)')
    .option('-e, --experiment <name>', 'experiment label (search attribute Experiment)')
    .addOption(
      new Option(
        '--mode <mode>',
        "how the student learns from the teachers (none: alone, the spec's teachers dropped)",
      ).choices([...KD_MODES]),
    )
    .option('--temperature <t>', 'τ of the soft KD terms', (v) => {
      const t = num(v);
      if (!(t > 0)) throw new InvalidArgumentError(`expected a temperature > 0, got "${v}"`);
      return t;
    })
    .option('--features <teacher>', "also regress the patch tokens onto this teacher's last feature map")
    .option('--feature-weight <w>', 'weight of the feature term (default 1)', (v) => {
      const w = num(v);
      if (!(w > 0)) throw new InvalidArgumentError(`expected a weight > 0, got "${v}"`);
      return w;
    });
  addTrainOptions(cmd)
    .option('--checkpoint-every <n>', 'checkpoint to the store every N steps', int)
    .option('--no-follow', 'start the run and return without waiting')
    .option('--json', 'print the result as JSON')
    .option(...RERUN_OPTION)
    .action(async (flags: DistillFlags) => {
      const spec = distillSpecFromFlags(flags);
      const e = endpoints();
      const client = await connectClient(e);
      try {
        const run = await startOrAttachDistill(client, spec, startOptions(flags));
        process.stderr.write(`${startedText(run, flags)} ${run.workflowId}\n`);
        if (e.temporal.uiUrl) {
          process.stderr.write(
            `  ${e.temporal.uiUrl}/namespaces/${e.temporal.namespace}/workflows/${run.workflowId}\n`,
          );
        }
        if (!flags.follow) return;
        const result = await followTrain<DistillResult>(client, run.handle);
        process.stdout.write(
          flags.json
            ? `${JSON.stringify({ workflowId: run.workflowId, ...result }, null, 2)}\n`
            : `${describeDistill(result, run.workflowId, e.temporal.uiUrl, e.temporal.namespace)}\n`,
        );
      } finally {
        await client.connection.close();
      }
    });
}
