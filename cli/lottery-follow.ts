// Follows a lottery-ticket experiment live: one progress bar per level being trained (trunk and branches, fed
// by the workflows' `status` queries) and a line per finished level, until the result arrives.
//
// The trunk continues as new after every level, so it is queried by workflow id alone (the server answers from
// its latest run) and its result is awaited with handle.result(), which follows the continue-as-new chain.
import type { Client } from '@temporalio/client';
import cliProgress from 'cli-progress';

import { branchKind, branchLabel, branchTrunkWorkflowId, type BranchSpec } from '../contract/branches';
import {
  type BranchSummary,
  type LevelProgressUpdate,
  type LevelResult,
  type LotteryResult,
  type LotteryStatus,
} from '../contract/lottery';
import { queryStatus } from './workflow-query';
import { progressLine } from './progress-text';
import { formatAccuracyPct, formatRemainingPct } from '../report/table';
import { pollerCount } from '../client/runs';
import { COMPUTE_TASK_QUEUE, LIGHT_TASK_QUEUE } from '../contract/task-queues';
import { inWorkflow } from './failure-text';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** What one workflow (the trunk or a branch) has finished and is training now. */
export interface LevelSource {
  label: string;
  levels: LevelResult[];
  running: LevelProgressUpdate[];
}

export interface FollowOptions {
  pollMs?: number;
  out?: NodeJS.WriteStream;
  /** Without a terminal: how often the progress of running levels is printed. */
  textEveryMs?: number;
  /** The command that shows the workflows again, for the line printed when Ctrl-C stops following. */
  watchCommand?: string;
}

/** `trunk        level 2   64.0% remaining  final test acc 97.12%  (best 97.30% @ 800)` */
export function levelLine(label: string, l: LevelResult, width = 16): string {
  return (
    `${label.padEnd(width)} level ${String(l.level).padStart(2)}  ${formatRemainingPct(l.remainingPct).padStart(5)}% remaining  ` +
    `final test acc ${formatAccuracyPct(l.finalTestAccuracy)}%  (best ${formatAccuracyPct(l.bestTestAccuracy)}% @ ${l.bestIteration})` +
    (l.reused ? '  [stored]' : '') +
    (l.healed && l.healed.length > 0 ? `  [recomputed damaged: ${l.healed.join(', ')}]` : '')
  );
}

/**
 * Polls `snapshot` and draws it until `result` settles; `final` turns the result into the last snapshot, so
 * that every finished level is printed once even if it finished between two polls.
 */
export async function followLevels<R>(
  client: Client,
  opts: FollowOptions & {
    result: Promise<R>;
    snapshot: () => Promise<LevelSource[]>;
    final: (r: R) => LevelSource[];
    labelWidth?: number;
    /** The workflow whose result this is: a failure's text names it. */
    workflowId?: string;
  },
): Promise<R> {
  const out = opts.out ?? process.stderr;
  const width = opts.labelWidth ?? 16;
  // Live bars on a terminal; elsewhere (a pipe, a log file) a progress line per level now and then.
  const view =
    out.isTTY === true ? new BarView(out, width) : new LineView(out, width, opts.textEveryMs ?? 10_000);
  const printed = new Set<string>();

  const draw = (sources: LevelSource[]) => {
    const running: { label: string; p: LevelProgressUpdate }[] = [];
    for (const s of sources) {
      for (const l of s.levels) {
        const key = `${s.label}:${l.level}`;
        if (printed.has(key)) continue;
        printed.add(key);
        view.line(levelLine(s.label, l, width));
      }
      for (const p of s.running)
        if (!printed.has(`${s.label}:${p.level}`)) running.push({ label: s.label, p });
    }
    view.progress(running);
  };

  let done = false;
  void opts.result.then(
    () => (done = true),
    () => (done = true),
  );
  let warned = false;
  let polls = 0;
  // Ctrl-C stops following, not the experiment: put the terminal back and say so.
  const onSigint = () => {
    view.stop();
    out.write(
      `\ndetached: the workflows keep running in Temporal; see them with \`${opts.watchCommand ?? 'lth status <experiment> --watch'}\`\n`,
    );
    process.exit(130);
  };
  process.once('SIGINT', onSigint);
  try {
    while (!done) {
      const sources = await opts.snapshot().catch(() => [] as LevelSource[]);
      draw(sources);
      const idle = sources.every((s) => s.running.length === 0);
      if (idle && !warned && ++polls >= 3) {
        const [light, compute] = await Promise.all([
          pollerCount(client, LIGHT_TASK_QUEUE, 'workflow').catch(() => -1),
          pollerCount(client, COMPUTE_TASK_QUEUE, 'activity').catch(() => -1),
        ]);
        if (light === 0 || compute === 0) {
          view.line(
            `waiting: no ${light === 0 ? 'light' : 'compute'} worker is polling; start workers with \`lth worker\``,
          );
          warned = true;
        }
      }
      await Promise.race([sleep(opts.pollMs ?? 1000), opts.result.catch(() => undefined)]);
    }
    const result = await opts.result.catch((err: unknown) => {
      throw opts.workflowId === undefined ? err : inWorkflow(err, opts.workflowId);
    });
    draw(opts.final(result));
    return result;
  } finally {
    process.removeListener('SIGINT', onSigint);
    view.stop();
  }
}

interface RunningLevel {
  label: string;
  p: LevelProgressUpdate;
}

/** cli-progress bars, one per level being trained; finished levels' lines are printed above them. */
class BarView {
  private readonly multibar: cliProgress.MultiBar;
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly width: number,
  ) {
    this.multibar = new cliProgress.MultiBar(
      {
        format:
          ' {label} level {level} {bar} {percentage}% | step {value}/{total} | loss {loss} | test acc {acc}',
        hideCursor: true,
        stream: out,
        clearOnComplete: true,
      },
      cliProgress.Presets.shades_classic,
    );
  }

  line(text: string): void {
    if (this.multibar.isActive) this.multibar.log(`${text}\n`);
    else this.out.write(`${text}\n`);
  }

  progress(running: RunningLevel[]): void {
    const live = new Set<string>();
    for (const { label, p } of running) {
      const key = `${label}:${p.level}`;
      live.add(key);
      const payload = {
        label: label.padEnd(this.width),
        level: String(p.level).padStart(2),
        loss: p.loss === null ? '-' : p.loss.toFixed(4),
        acc: p.testAccuracy === null ? '-' : `${formatAccuracyPct(p.testAccuracy)}%`,
      };
      const bar = this.bars.get(key);
      if (bar) {
        bar.setTotal(p.totalSteps);
        bar.update(p.step, payload);
      } else this.bars.set(key, this.multibar.create(p.totalSteps, p.step, payload));
    }
    for (const [key, bar] of this.bars) {
      if (live.has(key)) continue;
      this.multibar.remove(bar);
      this.bars.delete(key);
    }
  }

  stop(): void {
    for (const bar of this.bars.values()) this.multibar.remove(bar);
    this.bars.clear();
    if (this.multibar.isActive) {
      this.multibar.update(); // flushes lines logged since the last redraw
      this.multibar.stop();
    }
  }
}

/** Plain lines: finished levels at once, the progress of running levels every `everyMs`. */
class LineView {
  private last = 0;

  constructor(
    private readonly out: NodeJS.WriteStream,
    private readonly width: number,
    private readonly everyMs: number,
  ) {}

  line(text: string): void {
    this.out.write(`${text}\n`);
  }

  progress(running: RunningLevel[]): void {
    if (running.length === 0 || Date.now() - this.last < this.everyMs) return;
    this.last = Date.now();
    for (const { label, p } of running) this.out.write(`  ${label.padEnd(this.width)} ${progressLine(p)}\n`);
  }

  stop(): void {}
}

/**
 * The live levels of a trunk and of the branches it runs, once it has reached them. The trunk's status names its
 * branches (a trunk attached to may have been started with other branches than `branches`, the caller's spec).
 */
export async function lotterySnapshot(
  client: Client,
  trunkId: string,
  branches: BranchSpec[],
): Promise<LevelSource[]> {
  const trunk = await queryStatus<LotteryStatus>(client, trunkId);
  if (!trunk) return [];
  const sources: LevelSource[] = [{ label: 'trunk', levels: trunk.levels, running: trunk.running }];
  if (trunk.phase === 'branches' || trunk.phase === 'done') {
    const theirs =
      trunk.branches.length > 0
        ? trunk.branches.map((b) => ({ workflowId: b.workflowId, branch: b.branch }))
        : branches.map((b) => ({ workflowId: `${trunkId}.${branchLabel(b)}`, branch: b }));
    const found = await Promise.all(theirs.map((b) => branchSnapshot(client, b.workflowId, b.branch)));
    sources.push(...found.filter((s): s is LevelSource => s !== null));
  }
  return sources;
}

/** One branch's live levels; a rewind branch's are those of the IMP lineage it runs as a child. */
export async function branchSnapshot(
  client: Client,
  workflowId: string,
  branch: BranchSpec,
): Promise<LevelSource | null> {
  const label = branchLabel(branch);
  const status = await queryStatus<LotteryStatus>(
    client,
    branchKind(branch).runs === 'trunk' ? branchTrunkWorkflowId(workflowId) : workflowId,
  );
  return status ? { label, levels: status.levels, running: status.running } : null;
}

export function resultSources(result: LotteryResult): LevelSource[] {
  return [
    { label: 'trunk', levels: result.levels, running: [] },
    ...result.branches.map((b) => branchResultSource(b)),
  ];
}

export function branchResultSource(b: BranchSummary): LevelSource {
  return { label: b.label, levels: b.levels, running: [] };
}
