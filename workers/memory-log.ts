// After every activity, the compute worker logs what it holds: the backend's live tensors and the process's resident
// memory. Across the levels of an IMP run both must stay flat; a count that grows with each activity is a leak, and
// test/worker-memory.test.ts reads these lines to assert there is none.
import type { ComputeActivities } from '../contract/activities';

export interface MemoryProbe {
  /** Live tensors and their bytes on the backend. */
  tensors(): { tensors: number; bytes: number };
}

/** The worker log line after an activity; MEMORY_LINE parses it back. */
export function memoryLine(activity: string, probe: MemoryProbe): string {
  const { tensors, bytes } = probe.tensors();
  const rss = process.memoryUsage().rss;
  return `memory after ${activity}: ${tensors} tensors (${(bytes / 2 ** 20).toFixed(1)} MiB), rss ${(rss / 2 ** 20).toFixed(0)} MiB`;
}

export const MEMORY_LINE = /memory after (\w+): (\d+) tensors \(([\d.]+) MiB\), rss (\d+) MiB/;

/** The same activities, each logging memoryLine when it settles (succeeded or failed). */
export function withMemoryLog(
  activities: ComputeActivities,
  probe: MemoryProbe,
  log: (msg: string) => void,
): ComputeActivities {
  const wrapped: Record<string, (...args: never[]) => Promise<unknown>> = {};
  for (const [name, fn] of Object.entries(activities) as [string, (...args: never[]) => Promise<unknown>][]) {
    wrapped[name] = async (...args) => {
      try {
        return await fn(...args);
      } finally {
        log(memoryLine(name, probe));
      }
    };
  }
  return wrapped as unknown as ComputeActivities;
}
