// A workflow's input is checked with the contract's parser; a spec no retry can fix fails the workflow at once
// as a non-retryable SpecError instead of retrying the workflow task forever.
import { ApplicationFailure } from '@temporalio/workflow';

import { SpecError } from '../contract/spec';

export function parseInput<T>(parse: (input: unknown) => T, input: unknown): T {
  try {
    return parse(input);
  } catch (err) {
    if (err instanceof SpecError) throw ApplicationFailure.nonRetryable(err.message, 'SpecError');
    throw err;
  }
}
