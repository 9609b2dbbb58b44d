// Pausing and resuming a long workflow between its units of work (a trunk between levels, a sweep between trials):
// `pause` and `resume` signals, a flag carried over continue-as-new, and the Phase search attribute set to
// 'paused' while it waits, so the UI shows which runs are held. Work already running is never interrupted.
import { condition, defineSignal, setHandler, upsertSearchAttributes } from '@temporalio/workflow';

import * as sa from '../contract/search-attributes';

export const pauseSignal = defineSignal('pause');
export const resumeSignal = defineSignal('resume');

export interface PauseControl {
  paused(): boolean;
  /** Returns at once unless paused; else waits for `resume` (Phase 'paused' meanwhile, then `phaseAfter`). */
  untilResumed(phaseAfter: string): Promise<void>;
}

export function pauseControl(initiallyPaused: boolean, onChange?: (paused: boolean) => void): PauseControl {
  let paused = initiallyPaused;
  setHandler(pauseSignal, () => {
    paused = true;
    onChange?.(true);
  });
  setHandler(resumeSignal, () => {
    paused = false;
    onChange?.(false);
  });
  return {
    paused: () => paused,
    async untilResumed(phaseAfter) {
      if (!paused) return;
      upsertSearchAttributes([{ key: sa.PHASE, value: 'paused' }]);
      await condition(() => !paused);
      upsertSearchAttributes([{ key: sa.PHASE, value: phaseAfter }]);
    },
  };
}
