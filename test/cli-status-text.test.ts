// The state `lth status` shows for each lottery workflow, a pause included, without services:
//   node --import tsx --test test/cli-status-text.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { runState, type RunView } from '../cli/experiments';
import type { LevelProgressUpdate, LevelResult } from '../contract/lottery';

/** A trunk of levels 0..3 with `done` levels finished. */
function trunk(done: number, over: Partial<RunView> = {}): RunView {
  return {
    workflowId: 'lottery-x',
    label: 'trunk',
    execution: 'RUNNING',
    phase: 'training',
    paused: false,
    levelsPlanned: 4,
    levels: Array.from({ length: done }, (_, level) => ({ level }) as LevelResult),
    running: [],
    startTime: null,
    closeTime: null,
    note: null,
    ...over,
  };
}

const training = (level: number) => ({ level, step: 10, totalSteps: 100 }) as LevelProgressUpdate;

test('a running trunk shows its phase', () => {
  assert.equal(runState(trunk(1, { running: [training(1)] })), 'running, training');
  assert.equal(runState(trunk(4, { execution: 'COMPLETED', phase: 'done' })), 'completed, done');
});

test('a paused trunk says after which level it holds, and of how many', () => {
  assert.equal(runState(trunk(3, { paused: true })), 'running, paused after level 2 of 3');
  assert.equal(runState(trunk(0, { paused: true, phase: 'queued' })), 'running, paused before level 0 of 3');
});

test('a pause asked for while a level trains names the level it lets finish', () => {
  assert.equal(
    runState(trunk(2, { paused: true, running: [training(2)] })),
    'running, pausing after level 2',
  );
});

test('a pause does not hold branches or a workflow that has ended', () => {
  assert.equal(runState(trunk(4, { paused: true, phase: 'branches' })), 'running, branches');
  assert.equal(
    runState(trunk(2, { paused: true, execution: 'CANCELLED', phase: 'cancelled' })),
    'cancelled, cancelled',
  );
});
