// `lth lottery`: start (or attach to) a lottery-ticket experiment (the IMP trunk, then its control branches) and
// follow it live.
import type { Client } from '@temporalio/client';
import { Command } from 'commander';

import type { StackEndpoints } from '../../infra/endpoints';
import { connectClient, endpoints } from '../../workers/connection';
import { branchLabel } from '../../contract/branches';
import { parseLotterySpec, type LotterySpec } from '../../contract/lottery';
import { type LotteryResult } from '../../contract/lottery';
import { startInput } from '../experiments';
import {
  describeLotterySpec,
  lotterySpecFromFlags,
  parseBranchFlag,
  parseRewindFlag,
  type LotteryFieldFlags,
} from '../lottery-spec';
import { BRANCH_FLAG_HELP } from '../../contract/branches';
import { followLevels, lotterySnapshot, resultSources } from '../lottery-follow';
import { reportSeries } from '../../report/lottery';
import { formatReportTable } from '../../report/table';
import { startOrAttachLottery, type StartedLottery } from '../../client/runs';
import { addTrainOptions, int, num } from '../spec-flags';
import { RERUN_OPTION, startOptions, startedText, type RerunFlag } from '../rerun';

interface LotteryFlags extends LotteryFieldFlags, RerunFlag {
  follow: boolean;
  json?: boolean;
}

export function workflowLink(uiUrl: string | null, namespace: string, workflowId: string): string | null {
  return uiUrl ? `${uiUrl}/namespaces/${namespace}/workflows/${encodeURIComponent(workflowId)}` : null;
}

/** Attaching to a running trunk keeps its own branches: say which of the spec's it will not run. */
async function warnMissingBranches(
  client: Client,
  workflowId: string,
  spec: LotterySpec,
  say: (line: string) => void,
): Promise<void> {
  if (spec.branches.length === 0) return;
  let theirs: Set<string>;
  try {
    const input = (await startInput(client, workflowId)) as { spec?: unknown };
    theirs = new Set(parseLotterySpec(input.spec).branches.map(branchLabel));
  } catch {
    return;
  }
  const missing = spec.branches.map(branchLabel).filter((l) => !theirs.has(l));
  if (missing.length > 0) {
    say(
      `note: the running trunk was started without ${missing.join(', ')}; once it has finished its levels, ` +
        `start ${missing.length === 1 ? 'it' : 'them'} with \`lth branch ${spec.experiment} --kind ...\`, or run this ` +
        'command again after it has completed',
    );
  }
}

/** Says which trunk was started or attached to, what it runs, and its UI link (`say` goes to stderr). */
export async function announceLottery(
  client: Client,
  e: StackEndpoints,
  run: StartedLottery,
  spec: LotterySpec,
  say: (line: string) => void,
  flags: RerunFlag = {},
): Promise<void> {
  say(`${startedText(run, flags)} ${run.workflowId}`);
  say(`  ${describeLotterySpec(spec)}`);
  const link = workflowLink(e.temporal.uiUrl, e.temporal.namespace, run.workflowId);
  if (link) say(`  ${link}`);
  if (!run.started) await warnMissingBranches(client, run.workflowId, spec, say);
}

/** Follows the trunk and its branches live (bars or lines on stderr) until the experiment's result. */
export function followLottery(
  client: Client,
  run: StartedLottery,
  spec: LotterySpec,
): Promise<LotteryResult> {
  return followLevels(client, {
    result: run.handle.result(),
    workflowId: run.workflowId,
    snapshot: () => lotterySnapshot(client, run.workflowId, spec.branches),
    final: resultSources,
    watchCommand: `lth status ${spec.experiment} --watch`,
  });
}

export function registerLotteryCommand(program: Command): void {
  const cmd = program
    .command('lottery')
    .description(
      'start (or attach to) a lottery-ticket experiment: IMP levels, then control branches; follow it',
    )
    .option('-c, --config <file>', 'lottery spec, JSON or YAML (e.g. examples/lottery-lenet-mnist.yaml)')
    .option('-e, --experiment <name>', 'experiment label (search attribute Experiment)')
    .option('--levels <n>', 'pruning levels after the dense level 0', int)
    .option('--fraction <x>', 'share of the surviving weights pruned per level', num)
    .option(
      '--rewind <init|step>',
      'rewind survivors to their initial values or to the dense run at this step',
      parseRewindFlag,
    )
    .option(
      `--branch <kind>`,
      `control branch to run after the trunk (repeatable; replaces the spec's): ${BRANCH_FLAG_HELP}`,
      parseBranchFlag,
    );
  addTrainOptions(cmd)
    .option('--checkpoint-every <n>', 'checkpoint to the store every N steps', int)
    .option('--no-follow', 'start the experiment and return without waiting')
    .option('--json', 'print the result as JSON')
    .option(...RERUN_OPTION)
    .action(async (flags: LotteryFlags) => {
      // Everything about the spec is checked before anything connects or starts.
      const spec = lotterySpecFromFlags(flags);
      const e = endpoints();
      const client = await connectClient(e);
      try {
        const run = await startOrAttachLottery(client, spec, startOptions(flags));
        const say = (line: string) => process.stderr.write(`${line}\n`);
        await announceLottery(client, e, run, spec, say, flags);
        if (!flags.follow) {
          say(`follow it with \`lth status ${spec.experiment} --watch\``);
          return;
        }
        const result = await followLottery(client, run, spec);
        if (flags.json) {
          process.stdout.write(`${JSON.stringify({ workflowId: run.workflowId, ...result }, null, 2)}\n`);
          return;
        }
        process.stdout.write(
          `\n${formatReportTable(reportSeries(result.levels, result.branches))}\n` +
            `lineage ${result.lineageId}: levels under experiments/${result.lineageId}/ in the store\n` +
            `report (table, plot): lth report ${spec.experiment}\n`,
        );
      } finally {
        await client.connection.close();
      }
    });
}
