import { defineQuery, setHandler, upsertSearchAttributes } from '@temporalio/workflow';

import {
  measures,
  parseAnalysisSpec,
  type AnalysisResult,
  type AnalysisStatus,
  type MeasureRecord,
} from '../contract/analysis';
import * as sa from '../contract/search-attributes';
import { computeActivities } from './compute-activities';
import { parseInput } from './spec-input';

export const analysisStatusQuery = defineQuery<AnalysisStatus>('status');

/**
 * The geometry of stored solutions: one activity per (solution, measure) on the compute queue, at most
 * `parallelism` at a time, each reusing its stored result when there is one. A measure that needs what a solution
 * lacks (the path from the previous level, from a twin) is skipped for it.
 */
export async function analyzeWorkflow(input: unknown): Promise<AnalysisResult> {
  const spec = parseInput(parseAnalysisSpec, input);
  const jobs = spec.targets.flatMap((target, t) =>
    spec.config.measures.filter((m) => measures(target, m)).map((measure) => ({ t, target, measure })),
  );
  const status: AnalysisStatus = {
    phase: 'measuring',
    experiment: spec.experiment,
    total: jobs.length,
    done: 0,
    reused: 0,
  };
  setHandler(analysisStatusQuery, () => status);
  upsertSearchAttributes([
    { key: sa.EXPERIMENT, value: spec.experiment },
    { key: sa.RUN_KIND, value: 'analysis' },
    { key: sa.PHASE, value: 'measuring' },
  ]);
  const { analyzeMeasure } = computeActivities(spec.heartbeatTimeoutSeconds);
  const records: MeasureRecord[][] = spec.targets.map(() => []);
  try {
    let next = 0;
    const lane = async (): Promise<void> => {
      while (next < jobs.length) {
        const job = jobs[next++]!;
        const r = await analyzeMeasure({ target: job.target, measure: job.measure, config: spec.config });
        records[job.t]!.push(r);
        status.done++;
        if (r.reused) status.reused++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(spec.parallelism, jobs.length) }, lane));
    status.phase = 'done';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'done' }]);
    return {
      targets: spec.targets.map((target, t) => ({
        label: target.label,
        level: target.level,
        remainingPct: target.remainingPct,
        // In the spec's measure order, whatever order the lanes finished in.
        measures: [...records[t]!].sort(
          (a, b) => spec.config.measures.indexOf(a.measure) - spec.config.measures.indexOf(b.measure),
        ),
      })),
    };
  } catch (err) {
    status.phase = 'failed';
    upsertSearchAttributes([{ key: sa.PHASE, value: 'failed' }]);
    throw err;
  }
}
