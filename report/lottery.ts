// From a lottery experiment's levels to what the report renders: one series for the IMP trunk (the ticket) and
// one per control branch. A branch trains levels 1..L from the trunk's artifacts; its level 0 is the trunk's
// dense level 0, so that row is added to it and every line starts at 100%.
import { type LevelResult } from '../contract/lottery';
import type { PlotSeries } from './plot';
import type { LevelRow, ReportSeries } from './table';

export const TRUNK_SERIES = 'ticket (IMP)';

export type ReportMetric = 'final' | 'best';

function row(l: LevelResult): LevelRow {
  return {
    level: l.level,
    remainingPct: l.remainingPct,
    bestTestAccuracy: l.bestTestAccuracy,
    bestIteration: l.bestIteration,
    finalTestAccuracy: l.finalTestAccuracy,
  };
}

export function reportSeries(
  trunk: LevelResult[],
  branches: { label: string; levels: LevelResult[] }[],
): ReportSeries[] {
  const dense = trunk.find((l) => l.level === 0);
  const series: ReportSeries[] = [{ name: TRUNK_SERIES, rows: trunk.map(row) }];
  for (const b of branches) {
    const rows = b.levels.map(row);
    if (dense && !b.levels.some((l) => l.level === 0)) rows.unshift(row(dense));
    series.push({ name: b.label, rows: rows.sort((x, y) => x.level - y.level) });
  }
  return series;
}

/** Test accuracy (final or best) against % of weights remaining; series without levels are left out. */
export function plotSeries(series: ReportSeries[], metric: ReportMetric): PlotSeries[] {
  return series
    .filter((s) => s.rows.length > 0)
    .map((s) => ({
      name: s.name,
      points: s.rows.map((r) => ({
        remainingPct: r.remainingPct,
        accuracy: metric === 'final' ? r.finalTestAccuracy : r.bestTestAccuracy,
      })),
    }));
}

export function metricLabel(metric: ReportMetric): string {
  return metric === 'final' ? 'final test accuracy (%)' : 'best test accuracy (%)';
}
