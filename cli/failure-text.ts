// Why a run failed, for a person: the cause chain of a failed workflow (child workflow -> activity -> the error the
// activity threw, with the damaged key when there is one) and one line saying what to do next. Printed by every
// command that follows a run (through cli/main.ts's error handler) and by `lth status` for a failed workflow.
import { WorkflowFailedError } from '@temporalio/client';
import {
  ActivityFailure,
  ApplicationFailure,
  CancelledFailure,
  ChildWorkflowFailure,
  TerminatedFailure,
  TimeoutFailure,
} from '@temporalio/common';

import { REPAIR_NEXT } from '../activities/heal';

export interface FailureCause {
  /** Outermost first: the workflows and activity it went through, then the error itself. */
  chain: string[];
  /** The damaged or missing object's key, when the error names one. */
  key: string | null;
  /** One line: what to do next. */
  next: string;
}

const WORKFLOW_ID = Symbol('lth.workflowId');

/** Marks a workflow's failure with its id, so that the text names the workflow (the SDK's error does not). */
export function inWorkflow(err: unknown, workflowId: string): unknown {
  if (err instanceof WorkflowFailedError)
    (err as unknown as Record<symbol, string>)[WORKFLOW_ID] = workflowId;
  return err;
}

function detailsOf(f: ApplicationFailure): { key?: unknown; next?: unknown } {
  const d = f.details?.[0];
  return typeof d === 'object' && d !== null ? (d as { key?: unknown; next?: unknown }) : {};
}

function nextFor(type: string | null | undefined, last: Error): string {
  if (type === 'IntegrityError' || type === 'ArtifactNotFoundError') return REPAIR_NEXT;
  if (type === 'SpecError') return 'fix the field named above, then run the command again';
  if (last instanceof TimeoutFailure)
    return 'a worker stopped answering in time (see its log); run the same command again to start the failed run afresh';
  if (last instanceof TerminatedFailure)
    return 'it was terminated on purpose; run the same command again to start it afresh';
  if (last instanceof CancelledFailure)
    return 'it was cancelled; run the same command again to start it afresh';
  return "see the compute worker's log for details; run the same command again to start the failed run afresh";
}

/** The cause chain of a failed workflow, or null when `err` is not one (nor a failure inside one). */
export function failureCause(err: unknown): FailureCause | null {
  if (!(err instanceof WorkflowFailedError) && !(err instanceof ActivityFailure)) return null;
  const chain: string[] = [];
  const id = (err as unknown as Record<symbol, unknown>)[WORKFLOW_ID];
  if (err instanceof WorkflowFailedError)
    chain.push(typeof id === 'string' ? `workflow ${id} failed` : 'the workflow failed');
  else chain.push(`activity ${err.activityType} failed`);
  let key: string | null = null;
  let next: string | null = null;
  let type: string | null | undefined;
  let last: Error = err;
  for (let e: unknown = err.cause; e instanceof Error; e = (e as Error).cause) {
    last = e;
    if (e instanceof ChildWorkflowFailure) {
      chain.push(`child workflow ${e.execution.workflowId} (${e.workflowType}) failed`);
    } else if (e instanceof ActivityFailure) {
      chain.push(`activity ${e.activityType} failed`);
    } else if (e instanceof ApplicationFailure) {
      type = e.type;
      const d = detailsOf(e);
      if (typeof d.key === 'string') key = d.key;
      if (typeof d.next === 'string') next = d.next;
      chain.push(`${e.type ?? 'Error'}: ${e.message}`);
    } else if (e instanceof TimeoutFailure) {
      chain.push(`timed out (${String(e.timeoutType)})`);
    } else if (e instanceof TerminatedFailure) {
      chain.push(`terminated${e.message ? `: ${e.message}` : ''}`);
    } else if (e instanceof CancelledFailure) {
      chain.push('cancelled');
    } else {
      chain.push(e.message);
    }
  }
  return { chain, key, next: next ?? nextFor(type, last) };
}

/** The chain as indented lines: the first as it is, each cause under it, the key, and `next: ...`. */
export function formatFailureCause(c: FailureCause, indent = ''): string[] {
  const [head, ...rest] = c.chain;
  return [
    `${indent}${head ?? 'failed'}`,
    ...rest.map((line) => `${indent}  because ${line}`),
    ...(c.key ? [`${indent}  key: ${c.key}`] : []),
    `${indent}next: ${c.next}`,
  ];
}

/** What `lth` prints for an error that ends a command: the cause chain of a failed workflow, else its message. */
export function cliErrorText(err: unknown): string {
  const cause = failureCause(err);
  if (cause)
    return `${formatFailureCause(cause)
      .map((l, i) => (i === 0 ? `lth: ${l}` : l))
      .join('\n')}\n`;
  return `lth: ${err instanceof Error ? err.message : String(err)}\n`;
}
