// `lth pause|resume|cancel NAME`: control of running experiments and sweeps by name (a sweep's name or an
// experiment label), or one workflow by id. Pause holds the next unit of work back (a trunk's next level, a sweep's
// next trial) while the running one finishes; resume lets it go on; cancel stops everything running now: the
// activities stop at their next step, their last checkpoints stay in the store, and nothing unfinished is published.
import type { Client } from '@temporalio/client';
import { Command } from 'commander';

import * as sa from '../../contract/search-attributes';
import { connectClient, endpoints } from '../../workers/connection';
import { parseExperimentName } from '../experiments';

/** The run kinds whose workflows take `pause` and `resume`. */
const PAUSABLE = ['lottery', 'lottery-rewind-trunk', 'sweep'];
/**
 * The run kinds a cancel by name reaches (children of these are cancelled with them), parents first: targets are
 * signalled in this order, so a sweep learns it is cancelled before its trials fail under it.
 */
const CANCELLABLE = [
  'sweep',
  'scheduled',
  'lottery',
  'lottery-branch',
  'lottery-rewind-trunk',
  'train',
  'logits',
  'distill',
  'analysis',
];

interface Target {
  workflowId: string;
  runKind: string;
}

async function runningTargets(client: Client, name: string, kinds: string[]): Promise<Target[]> {
  const list = kinds.map((k) => `'${k}'`).join(', ');
  const query =
    `ExecutionStatus = 'Running' AND RunKind IN (${list}) AND ` +
    `(Experiment = '${name}' OR Sweep = '${name}')`;
  const out: Target[] = [];
  for await (const w of client.workflow.list({ query })) {
    out.push({ workflowId: w.workflowId, runKind: w.typedSearchAttributes.get(sa.RUN_KIND) ?? '?' });
  }
  return out.sort((a, b) => kinds.indexOf(a.runKind) - kinds.indexOf(b.runKind));
}

interface ControlFlags {
  workflow?: string;
}

async function control(action: 'pause' | 'resume' | 'cancel', nameArg: string | undefined, f: ControlFlags) {
  if (!f.workflow && !nameArg)
    throw new Error(`lth ${action}: give a sweep or experiment name, or --workflow <id>`);
  const client = await connectClient(endpoints());
  try {
    const targets = f.workflow
      ? [{ workflowId: f.workflow, runKind: '(by id)' }]
      : await runningTargets(
          client,
          parseExperimentName(nameArg as string),
          action === 'cancel' ? CANCELLABLE : PAUSABLE,
        );
    if (targets.length === 0) {
      throw new Error(
        `nothing running named '${nameArg}' that can be ${action === 'cancel' ? 'cancelled' : `${action}d`}` +
          (action === 'cancel' ? '' : ' (pause and resume apply to lottery trunks and sweeps)'),
      );
    }
    for (const t of targets) {
      const h = client.workflow.getHandle(t.workflowId);
      if (action === 'cancel') await h.cancel();
      else await h.signal(action);
      const what =
        action === 'pause'
          ? 'paused (the running level or trials finish first)'
          : `${action === 'cancel' ? 'cancelled' : 'resumed'}`;
      process.stdout.write(`${t.workflowId} (${t.runKind}): ${what}\n`);
    }
  } finally {
    await client.connection.close();
  }
}

export function registerControlCommands(program: Command): void {
  const describe = {
    pause: "hold back a running lottery trunk's next level or a sweep's next trials (what runs now finishes)",
    resume: 'let a paused trunk or sweep go on',
    cancel:
      'stop the running workflows of an experiment or sweep: activities stop at their next step, checkpoints stay, nothing half-published',
  } as const;
  for (const action of ['pause', 'resume', 'cancel'] as const) {
    program
      .command(action)
      .description(describe[action])
      .argument('[name]', 'a sweep name or experiment label: every matching running workflow')
      .option('--workflow <id>', 'one workflow by id instead')
      .action((name: string | undefined, f: ControlFlags) => control(action, name, f));
  }
}
