// `--rerun` on the commands that start a run: a completed run is otherwise attached to, so after `lth fsck --repair`
// removed some of its objects, only a rerun recomputes them.
import type { StartOptions } from '../client/runs';

export interface RerunFlag {
  rerun?: boolean;
}

/** Flag and help, for `.option(...RERUN_OPTION)`. */
export const RERUN_OPTION = [
  '--rerun',
  'start a completed run again instead of attaching to it: what it stored and still verifies is reused, what is missing or damaged (e.g. removed by `lth fsck --repair`) is recomputed',
] as const;

export function startOptions(flags: RerunFlag): StartOptions {
  return { rerun: flags.rerun === true };
}

/** What the command did, in words: a run started, started again, or attached to. */
export function startedText(run: { started: boolean }, flags: RerunFlag): string {
  if (!run.started) return 'attached to';
  return flags.rerun ? 'started again' : 'started';
}
