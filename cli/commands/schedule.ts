// `lth schedule create|list|describe|pause|unpause|trigger|backfill|delete`: a spec (a sweep, or a spec of any
// kind) run on a Temporal Schedule, by cron or interval, each run labelled with the time it was scheduled for
// (workflows/scheduled.ts). Everything given to `create` is checked before the schedule exists.
import type { Client, ScheduleDescription } from '@temporalio/client';
import { CronExpressionParser } from 'cron-parser';
import { Command, InvalidArgumentError, Option } from 'commander';

import { scheduledRunWorkflow } from '../../workflows/scheduled';
import { parseSpec, SpecError } from '../../contract/spec';
import {
  durationMs,
  OVERLAP_POLICIES,
  scheduleOptionsSchema,
  sdkOverlap,
  type OverlapPolicy,
  type ScheduleOptions,
} from '../../contract/schedule';
import { validateScheduledSpec } from '../../contract/scheduled-runs';
import * as sa from '../../contract/search-attributes';
import { LIGHT_TASK_QUEUE } from '../../contract/task-queues';
import { connectClient, endpoints } from '../../workers/connection';
import { readSpecFile } from '../spec-file';

const PREDEFINED = ['@yearly', '@annually', '@monthly', '@weekly', '@daily', '@midnight', '@hourly'];

/** Five-field cron (minute hour day-of-month month day-of-week) or a predefined one; the field named when wrong. */
export function checkCron(expressions: string[]): void {
  expressions.forEach((c, i) => {
    const expr = c.trim();
    const fields = expr.split(/\s+/);
    const problem = PREDEFINED.includes(expr)
      ? null
      : fields.length !== 5
        ? `needs 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`
        : (() => {
            try {
              CronExpressionParser.parse(expr, { tz: 'UTC' });
              return null;
            } catch (err) {
              return err instanceof Error ? err.message : String(err);
            }
          })();
    if (problem) {
      const line = `cron[${i}]: '${c}' ${problem}`;
      throw new SpecError(`invalid schedule:\n  ${line}`, [line]);
    }
  });
}

export function parseScheduleOptions(input: unknown): ScheduleOptions {
  const o = parseSpec(scheduleOptionsSchema, input, 'schedule');
  checkCron(o.cron);
  return o;
}

const WORKFLOW_ID_PREFIX = 'scheduled-';

async function withClient<T>(f: (c: Client) => Promise<T>): Promise<T> {
  const client = await connectClient(endpoints());
  try {
    return await f(client);
  } finally {
    await client.connection.close();
  }
}

interface CreateFlags {
  config: string;
  cron?: string[];
  every?: string;
  overlap?: OverlapPolicy;
  catchupWindow?: string;
  jitter?: string;
  note?: string;
  paused?: boolean;
}

async function create(id: string, f: CreateFlags): Promise<void> {
  const o = parseScheduleOptions({
    id,
    ...(f.cron ? { cron: f.cron } : {}),
    ...(f.every !== undefined ? { every: f.every } : {}),
    ...(f.overlap !== undefined ? { overlap: f.overlap } : {}),
    ...(f.catchupWindow !== undefined ? { catchupWindow: f.catchupWindow } : {}),
    ...(f.jitter !== undefined ? { jitter: f.jitter } : {}),
    ...(f.note !== undefined ? { note: f.note } : {}),
    paused: Boolean(f.paused),
  });
  const spec = readSpecFile(f.config);
  const what = validateScheduledSpec(spec);
  await withClient(async (client) => {
    await client.schedule.create({
      scheduleId: o.id,
      spec: {
        cronExpressions: o.cron,
        ...(o.every ? { intervals: [{ every: durationMs(o.every) }] } : {}),
        ...(o.jitter ? { jitter: durationMs(o.jitter) } : {}),
      },
      action: {
        type: 'startWorkflow',
        workflowType: scheduledRunWorkflow,
        args: [{ spec }],
        taskQueue: LIGHT_TASK_QUEUE,
        workflowId: `${WORKFLOW_ID_PREFIX}${o.id}`,
        staticSummary: `a run of schedule ${o.id}: the ${what.kind} ${what.label}, labelled with its time`,
        typedSearchAttributes: [
          { key: sa.RUN_KIND, value: 'scheduled' },
          { key: sa.EXPERIMENT, value: what.label },
        ],
      },
      policies: { overlap: sdkOverlap(o.overlap), catchupWindow: durationMs(o.catchupWindow) },
      state: { paused: o.paused, ...(o.note ? { note: o.note } : {}) },
    });
  });
  const when = [...o.cron.map((c) => `cron '${c}'`), ...(o.every ? [`every ${o.every}`] : [])].join(', ');
  process.stdout.write(
    `created schedule ${o.id}: a ${what.kind} (${what.label}-<time>) ${when} UTC, overlap ${o.overlap}` +
      `${o.paused ? ', paused' : ''}\n`,
  );
}

function describeText(d: ScheduleDescription): string {
  const spec = d.spec;
  const lines = [
    `schedule ${d.scheduleId}${d.state.paused ? ' (paused)' : ''}`,
    // The server keeps cron expressions as calendars.
    ...(spec.calendars ?? []).map((c) => `  calendar: ${JSON.stringify(c)}`),
    ...(spec.intervals ?? []).map((i) => `  every: ${String(i.every)} ms`),
    ...(d.state.note ? [`  note: ${d.state.note}`] : []),
    `  overlap: ${d.policies.overlap}, catch-up window: ${String(d.policies.catchupWindow)} ms`,
    `  actions: ${d.info.numActionsTaken} taken, ${d.info.numActionsSkippedOverlap} skipped for overlap`,
    `  next: ${
      d.info.nextActionTimes
        .slice(0, 3)
        .map((t) => t.toISOString())
        .join(', ') || '-'
    }`,
    ...d.info.recentActions
      .slice(-5)
      .map((a) => `  ran: ${a.scheduledAt.toISOString()} → ${a.action.workflow.workflowId}`),
    ...d.info.runningActions.map((a) => `  running: ${a.workflow.workflowId}`),
  ];
  return `${lines.join('\n')}\n`;
}

function isoDate(v: string): Date {
  const d = new Date(v);
  if (Number.isNaN(d.getTime())) throw new InvalidArgumentError(`expected an ISO date-time, got "${v}"`);
  return d;
}

const collect = (v: string, prev: string[] = []) => [...prev, v];

export function registerScheduleCommand(program: Command): void {
  const cmd = program
    .command('schedule')
    .description(
      'run a spec or a sweep on a Temporal Schedule (cron or interval), each run labelled with its time',
    );
  const overlap = () =>
    new Option('--overlap <policy>', 'when a run is due while the last still runs').choices([
      ...OVERLAP_POLICIES,
    ]);

  cmd
    .command('create')
    .argument('<id>', 'the schedule id')
    .requiredOption('-c, --config <file>', 'the spec or sweep each run starts (its labels get -<UTC time>)')
    .option('--cron <expr>', "5-field cron in UTC, e.g. '0 2 * * *' (repeatable)", collect)
    .option('--every <duration>', 'or an interval: 90s, 30m, 6h, 1d')
    .addOption(overlap().default(undefined, 'skip'))
    .option(
      '--catchup-window <duration>',
      'runs missed during an outage are still started when at most this late (default 1d)',
    )
    .option('--jitter <duration>', 'start each run up to this much after its time, at random')
    .option('--note <text>', 'a note shown with the schedule')
    .option('--paused', 'create it paused')
    .action(create);

  cmd.command('list').action(() =>
    withClient(async (client) => {
      for await (const s of client.schedule.list()) {
        const next = s.info.nextActionTimes[0]?.toISOString() ?? '-';
        process.stdout.write(`${s.scheduleId}  ${s.state.paused ? 'paused' : 'active'}  next ${next}\n`);
      }
    }),
  );

  cmd
    .command('describe')
    .argument('<id>')
    .option('--json', 'print the description as JSON')
    .action((id: string, f: { json?: boolean }) =>
      withClient(async (client) => {
        const d = await client.schedule.getHandle(id).describe();
        process.stdout.write(f.json ? `${JSON.stringify(d, null, 2)}\n` : describeText(d));
      }),
    );

  for (const [name, verb] of [
    ['pause', 'paused'],
    ['unpause', 'unpaused'],
  ] as const) {
    cmd
      .command(name)
      .argument('<id>')
      .option('--note <text>', 'why')
      .action((id: string, f: { note?: string }) =>
        withClient(async (client) => {
          const h = client.schedule.getHandle(id);
          await (name === 'pause' ? h.pause(f.note) : h.unpause(f.note));
          process.stdout.write(`${verb} schedule ${id}\n`);
        }),
      );
  }

  cmd
    .command('trigger')
    .argument('<id>')
    .description('start a run now')
    .addOption(overlap())
    .action((id: string, f: { overlap?: OverlapPolicy }) =>
      withClient(async (client) => {
        await client.schedule.getHandle(id).trigger(f.overlap ? sdkOverlap(f.overlap) : undefined);
        process.stdout.write(`triggered schedule ${id}\n`);
      }),
    );

  cmd
    .command('backfill')
    .argument('<id>')
    .description('start the runs the schedule would have started in a past window')
    .requiredOption('--start <time>', 'ISO date-time', isoDate)
    .requiredOption('--end <time>', 'ISO date-time', isoDate)
    .addOption(overlap().default(undefined, 'allow-all'))
    .action((id: string, f: { start: Date; end: Date; overlap?: OverlapPolicy }) =>
      withClient(async (client) => {
        if (f.end <= f.start) throw new InvalidArgumentError('--end must be after --start');
        await client.schedule
          .getHandle(id)
          .backfill({ start: f.start, end: f.end, overlap: sdkOverlap(f.overlap ?? 'allow-all') });
        process.stdout.write(
          `backfilled schedule ${id} over ${f.start.toISOString()} .. ${f.end.toISOString()}\n`,
        );
      }),
    );

  cmd
    .command('delete')
    .argument('<id>')
    .action((id: string) =>
      withClient(async (client) => {
        await client.schedule.getHandle(id).delete();
        process.stdout.write(`deleted schedule ${id}\n`);
      }),
    );
}
