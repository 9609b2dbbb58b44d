// `lth branch`: start one control branch of a lottery-ticket trunk on its own, e.g. a branch the spec did not
// list, or another seed. The trunk's spec comes from its config file, or, given an experiment name, from the
// trunk workflow itself: the input of its latest run holds the spec (continue-as-new passes it on unchanged),
// which is what it trained with, whatever the file says today.
import fs from 'node:fs';

import type { Client } from '@temporalio/client';
import { Command, InvalidArgumentError, Option } from 'commander';

import {
  BRANCH_KIND_NAMES,
  BRANCH_KINDS,
  branchKind,
  branchLabel,
  type BranchOptions,
  type BranchSpec,
} from '../../contract/branches';
import { lotteryWorkflowId, trunkLineageId } from '../../contract/ids';
import { parseBranchSpec, type LotterySpec } from '../../contract/lottery';
import { validateLotterySpec } from '../../contract/spec-kinds';
import { levelManifestKey } from '../../store';
import { connectClient, endpoints, openStore } from '../../workers/connection';
import {
  listLotteryExecutions,
  noExperiment,
  parseExperimentName,
  startInput,
  trunkIds,
} from '../experiments';
import { branchResultSource, branchSnapshot, followLevels } from '../lottery-follow';
import { lotterySpecFromFlags, parseRewindFlag } from '../lottery-spec';
import { formatReportTable } from '../../report/table';
import { startOrAttachBranch } from '../../client/runs';
import { int } from '../spec-flags';
import { workflowLink } from './lottery';
import { RERUN_OPTION, startOptions, startedText, type RerunFlag } from '../rerun';

/** How `lth branch` spells each option a branch kind may take (contract/branches/kind.ts BranchOptions). */
const OPTION_FLAGS: Record<keyof BranchOptions, string> = {
  seed: '--seed',
  scope: '--scope',
  rewindStep: '--rewind-step <step|init>',
};

interface BranchFlags extends BranchOptions, RerunFlag {
  kind: string;
  trunk?: string;
  follow: boolean;
  json?: boolean;
}

/** The branch the flags describe; a flag that does not apply to the kind is an error, not ignored. */
export function branchFromFlags(flags: Pick<BranchFlags, 'kind' | keyof BranchOptions>): BranchSpec {
  const kind = BRANCH_KINDS.find((k) => k.kind === flags.kind);
  if (!kind) throw new InvalidArgumentError(`--kind: expected one of ${BRANCH_KIND_NAMES.join(', ')}`);
  for (const option of Object.keys(OPTION_FLAGS) as (keyof BranchOptions)[]) {
    const flag = OPTION_FLAGS[option].split(' ')[0] as string;
    if (flags[option] !== undefined && !(kind.options as string[]).includes(option)) {
      const takers = BRANCH_KINDS.filter((k) => (k.options as string[]).includes(option)).map((k) => k.kind);
      throw new InvalidArgumentError(`${flag} applies to --kind ${takers.join(' and ')}, not ${kind.kind}`);
    }
    if (flags[option] === undefined && (kind.requires as string[] | undefined)?.includes(option)) {
      throw new InvalidArgumentError(`--kind ${kind.kind} needs ${OPTION_FLAGS[option]}`);
    }
  }
  return parseBranchSpec(kind.fromOptions(flags));
}

function isConfigFile(arg: string): boolean {
  return /\.(ya?ml|json)$/i.test(arg) || (fs.existsSync(arg) && fs.statSync(arg).isFile());
}

/** The trunk's spec, from a config file or from the experiment's trunk workflow. */
async function trunkSpec(client: Client, arg: string, trunk: string | undefined): Promise<LotterySpec> {
  if (isConfigFile(arg)) return lotterySpecFromFlags({ config: arg });
  const experiment = parseExperimentName(arg, 'EXPERIMENT-OR-CONFIG');
  const ids = trunkIds(await listLotteryExecutions(client, experiment));
  if (ids.length === 0) throw noExperiment(experiment);
  let id: string;
  if (trunk !== undefined) {
    if (!ids.includes(trunk))
      throw new Error(`--trunk: experiment ${experiment} has no trunk ${trunk}; it has ${ids.join(', ')}`);
    id = trunk;
  } else if (ids.length > 1) {
    throw new Error(
      `experiment ${experiment} has ${ids.length} trunks (specs that differ under the same label); choose one with --trunk: ${ids.join(', ')}`,
    );
  } else id = ids[0] as string;
  const input = (await startInput(client, id)) as { spec?: unknown };
  return validateLotterySpec(input.spec);
}

/** Per-level branches start from the trunk's stored masks and rewind points: all of them must exist. */
async function requireTrunkLevels(spec: LotterySpec): Promise<void> {
  const store = openStore();
  const lineage = trunkLineageId(spec);
  const present = await Promise.all(
    Array.from({ length: spec.levels + 1 }, (_, level) => store.exists(levelManifestKey(lineage, level))),
  );
  const missing = present.flatMap((ok, level) => (ok ? [] : [level]));
  if (missing.length > 0) {
    throw new Error(
      `the trunk of ${spec.experiment} (lineage ${lineage}) has not finished level${missing.length > 1 ? 's' : ''} ` +
        `${missing.join(', ')} of 0..${spec.levels}; a branch needs them all. Wait for it (\`lth status ${spec.experiment} --watch\`)` +
        ' or start it with `lth lottery`',
    );
  }
}

export function registerBranchCommand(program: Command): void {
  program
    .command('branch')
    .description('start (or attach to) one control branch of a finished lottery-ticket trunk and follow it')
    .argument('<experiment-or-config>', "the trunk's experiment name, or its spec file (JSON or YAML)")
    .addOption(
      new Option(
        '--kind <kind>',
        `the control: ${BRANCH_KINDS.map((k) => `${k.kind} (${k.summary})`).join('; ')}`,
      )
        .choices(BRANCH_KIND_NAMES)
        .makeOptionMandatory(),
    )
    .option(
      '--seed <n>',
      'seed of the new initialisation (reinit) or random masks (random-prune); default 1',
      int,
    )
    .addOption(
      new Option(
        '--scope <scope>',
        "random-prune: the trunk's count in every layer (layerwise, default) or its total over the pruned layers",
      ).choices(['layerwise', 'global']),
    )
    .option(
      '--rewind-step <step|init>',
      'rewind point of a rewind branch: a step of the dense run, or init',
      parseRewindFlag,
    )
    .option('--trunk <workflowId>', 'which trunk, when the experiment has several')
    .option('--no-follow', 'start the branch and return without waiting')
    .option('--json', 'print the result as JSON')
    .option(...RERUN_OPTION)
    .action(async (arg: string, flags: BranchFlags) => {
      const branch = branchFromFlags(flags);
      const e = endpoints();
      const client = await connectClient(e);
      try {
        const trunk = await trunkSpec(client, arg, flags.trunk);
        // The spec's own checks apply to the branch as well (e.g. a rewind point before the end of training).
        const spec = validateLotterySpec({ ...trunk, branches: [branch] });
        const perLevel = branchKind(branch).runs === 'per-level';
        if (perLevel) await requireTrunkLevels(spec);
        const run = await startOrAttachBranch(client, spec, branch, startOptions(flags));
        const say = (line: string) => process.stderr.write(`${line}\n`);
        say(`${startedText(run, flags)} ${run.workflowId}`);
        say(
          `  branch ${branchLabel(branch)} of trunk ${lotteryWorkflowId(spec)} (levels ${perLevel ? 1 : 0}..${spec.levels})`,
        );
        const link = workflowLink(e.temporal.uiUrl, e.temporal.namespace, run.workflowId);
        if (link) say(`  ${link}`);
        if (!flags.follow) return;
        const result = await followLevels(client, {
          result: run.handle.result(),
          workflowId: run.workflowId,
          snapshot: async () => {
            const s = await branchSnapshot(client, run.workflowId, branch);
            return s ? [s] : [];
          },
          final: (r) => [branchResultSource(r)],
          watchCommand: `lth status ${spec.experiment} --watch`,
        });
        if (flags.json) {
          process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
          return;
        }
        process.stdout.write(`\n${formatReportTable([{ name: result.label, rows: result.levels }])}`);
        process.stdout.write(`report with the trunk and the other branches: lth report ${spec.experiment}\n`);
      } finally {
        await client.connection.close();
      }
    });
}
