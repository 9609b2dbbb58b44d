// report/: the geometry section of `lth report`: each measured level's key numbers (one row per level and run, the
// trunk and its branches), as Markdown, and each measure against % of weights remaining. Pure: the analyses'
// results come in (contract/analysis.ts), text and Vega-Lite specs go out.
import type { TopLevelSpec } from 'vega-lite';

import {
  MEASURE_INPUTS,
  type AnalysisResult,
  type MeasureColumn,
  type MeasureName,
  type MeasureRecord,
} from '../contract/analysis';
import { PLOT_CONFIG, xDomain, xTickValues } from './plot';
import { formatRemainingPct } from './table';

/** The order measures' columns appear in (left to right); each measure's columns are its registry entry's. */
const COLUMN_ORDER: readonly MeasureName[] = [
  'loss',
  'hessian',
  'trace',
  'sharpness',
  'pac-bayes',
  'basin',
  'twin-path',
  'path',
  'rewind-path',
];

/** The columns: a measure's summary value, how the table heads it, and what a plot of it is called. */
export const GEOMETRY_COLUMNS: readonly ({ measure: MeasureName } & MeasureColumn)[] = COLUMN_ORDER.flatMap(
  (measure) => (MEASURE_INPUTS[measure].columns ?? []).map((c) => ({ measure, ...c })),
);

export interface GeometryRow {
  run: string;
  level: number;
  remainingPct: number;
  /** `${measure}.${key}` → value. */
  values: Map<string, number>;
}

const id = (c: { measure: string; key: string }) => `${c.measure}.${c.key}`;

/** One row per (run, level) over all the analyses given; a measure found twice keeps the later analysis' value. */
export function geometryRows(results: AnalysisResult[]): GeometryRow[] {
  const rows = new Map<string, GeometryRow>();
  for (const r of results) {
    for (const t of r.targets) {
      const k = `${t.label}\u0000${t.level}`;
      const row = rows.get(k) ?? {
        run: t.label,
        level: t.level,
        remainingPct: t.remainingPct,
        values: new Map(),
      };
      for (const m of t.measures)
        for (const [key, v] of Object.entries(m.summary)) row.values.set(`${m.measure}.${key}`, v);
      rows.set(k, row);
    }
  }
  // The trunk first, then the branches by name; levels ascending.
  return [...rows.values()].sort(
    (a, b) =>
      Number(b.run === 'trunk') - Number(a.run === 'trunk') ||
      a.run.localeCompare(b.run) ||
      a.level - b.level,
  );
}

function cell(v: number | undefined): string {
  if (v === undefined || !Number.isFinite(v)) return '-';
  return Math.abs(v) >= 1e4 || (Math.abs(v) < 1e-3 && v !== 0) ? v.toExponential(2) : v.toPrecision(4);
}

/** The value, and ± its standard deviation over replicates where the measure ran over several (n in the table). */
function withSpread(row: GeometryRow, key: string): string {
  const [std, n] = [row.values.get(`${key}.std`), row.values.get(`${key}.n`)];
  const v = cell(row.values.get(key));
  return std !== undefined && n !== undefined && n > 1 && v !== '-' ? `${v} ± ${cell(std)} (n=${n})` : v;
}

/** The columns some row has a value for. */
function presentColumns(rows: GeometryRow[]) {
  return GEOMETRY_COLUMNS.filter((c) => rows.some((r) => r.values.has(id(c))));
}

/** The table as cells (the columns with a value somewhere), for the report's Markdown and the CLI's text. */
export function geometryTable(rows: GeometryRow[]): { header: string[]; cells: string[][] } {
  const cols = presentColumns(rows);
  return {
    header: ['run', 'level', '% remaining', ...cols.map((c) => c.header)],
    cells: rows.map((r) => [
      r.run,
      String(r.level),
      formatRemainingPct(r.remainingPct),
      ...cols.map((c) => withSpread(r, id(c))),
    ]),
  };
}

export function formatGeometryMarkdown(rows: GeometryRow[]): string {
  const { header, cells } = geometryTable(rows);
  const lines = [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, i) => (i < 1 ? '---' : '---:')).join(' | ')} |`,
    ...cells.map((c) => `| ${c.join(' | ')} |`),
  ];
  return `${lines.join('\n')}\n`;
}

/** The same table as aligned plain text (a terminal's). */
export function formatGeometryText(rows: GeometryRow[]): string {
  const { header, cells } = geometryTable(rows);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((r) => (r[i] as string).length)));
  const line = (c: string[]) =>
    c.map((x, i) => (i < 1 ? x.padEnd(widths[i] as number) : x.padStart(widths[i] as number))).join('  ');
  return [line(header), ...cells.map(line)].join('\n');
}

/** The plots there is data for: one per column with a value at two or more levels. */
export function geometryPlots(rows: GeometryRow[]): { file: string; spec: TopLevelSpec }[] {
  return presentColumns(rows)
    .filter((c) => rows.filter((r) => r.values.has(id(c))).length >= 2)
    .map((c) => ({ file: `geometry-${c.measure}-${c.key}`, spec: measurePlotSpec(rows, c) }));
}

/** One measure against % of weights remaining (reversed log axis, as the accuracy plot), a line per run. */
export function measurePlotSpec(
  rows: GeometryRow[],
  column: { measure: string; key: string; title: string },
): TopLevelSpec {
  const data = rows
    .filter((r) => Number.isFinite(r.values.get(id(column))) && r.remainingPct > 0)
    .map((r) => ({ run: r.run, remainingPct: r.remainingPct, value: r.values.get(id(column)) as number }));
  if (data.length === 0) throw new Error(`no ${column.title} to plot`);
  const xs = data.map((d) => d.remainingPct);
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `${column.title} vs weights remaining`,
    width: 480,
    height: 300,
    background: 'white',
    padding: 12,
    data: { values: data },
    mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 50 } },
    encoding: {
      x: {
        field: 'remainingPct',
        type: 'quantitative',
        title: '% of weights remaining (log scale)',
        scale: { type: 'log', reverse: true, domain: xDomain(xs), nice: false },
        axis: { values: xTickValues(xs), format: '.3~r', grid: true, labelOverlap: false },
      },
      y: { field: 'value', type: 'quantitative', title: column.title, scale: { zero: false, nice: true } },
      color: { field: 'run', type: 'nominal', title: null, scale: { scheme: 'tableau10' } },
    },
    config: PLOT_CONFIG,
  };
}

/** Each (run, level)'s latest record of `measure` over the analyses given, the trunk first, levels ascending. */
export function latestRecords(results: AnalysisResult[], measure: string) {
  const found = new Map<
    string,
    { run: string; level: number; remainingPct: number; record: MeasureRecord }
  >();
  for (const r of results) {
    for (const t of r.targets) {
      const record = t.measures.find((m) => m.measure === measure);
      if (record)
        found.set(`${t.label}\u0000${t.level}`, {
          run: t.label,
          level: t.level,
          remainingPct: t.remainingPct,
          record,
        });
    }
  }
  return [...found.values()].sort(
    (a, b) =>
      Number(b.run === 'trunk') - Number(a.run === 'trunk') ||
      a.run.localeCompare(b.run) ||
      a.level - b.level,
  );
}

/** A few levels spread over what was measured: the first, the middle and the last. */
export function chosenLevels<T>(items: T[], count = 3): T[] {
  if (items.length <= count) return items;
  return Array.from(
    { length: count },
    (_, i) => items[Math.round((i * (items.length - 1)) / (count - 1))] as T,
  );
}

/** A measured slice's curve: one run's level, the loss along α (1D) or on the α × β grid (2D, row-major). */
export interface SliceCurve {
  run: string;
  level: number;
  remainingPct: number;
  axis: number[];
  /** The training loss at each point (1D: axis.length values; 2D: axis.length²). */
  loss: number[];
}

/** The 1D slices of several levels overlaid: training loss against the step along the direction. */
export function slicesPlotSpec(curves: SliceCurve[]): TopLevelSpec {
  const data = curves.flatMap((c) =>
    c.axis.map((alpha, i) => ({
      series: `${c.run} L${c.level} (${formatRemainingPct(c.remainingPct)}%)`,
      alpha,
      loss: c.loss[i] as number,
    })),
  );
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: 'training loss along a filter-normalised direction',
    width: 480,
    height: 300,
    background: 'white',
    padding: 12,
    data: { values: data },
    mark: { type: 'line', strokeWidth: 2 },
    encoding: {
      x: { field: 'alpha', type: 'quantitative', title: 'α (θ + α·d)' },
      y: { field: 'loss', type: 'quantitative', title: 'training loss', scale: { type: 'symlog' } },
      color: { field: 'series', type: 'nominal', title: null, scale: { scheme: 'viridis' }, sort: null },
    },
    config: PLOT_CONFIG,
  };
}

/**
 * A 2D slice as a filled contour map: the grid's cells coloured by the training loss in bands (a threshold scale
 * on log-spaced levels), the solution at the centre.
 */
export function contourPlotSpec(curve: SliceCurve): TopLevelSpec {
  const n = curve.axis.length;
  const step = n > 1 ? (curve.axis[1] as number) - (curve.axis[0] as number) : 1;
  const data = curve.loss.map((loss, k) => ({
    alpha: curve.axis[Math.floor(k / n)] as number,
    beta: curve.axis[k % n] as number,
    loss,
  }));
  const min = Math.max(Math.min(...curve.loss), 1e-6);
  const max = Math.max(...curve.loss, min * 10);
  const bands = 8;
  const thresholds = Array.from({ length: bands - 1 }, (_, i) => min * (max / min) ** ((i + 1) / bands));
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `training loss around ${curve.run} level ${curve.level} (${formatRemainingPct(curve.remainingPct)}% remaining)`,
    width: 340,
    height: 340,
    background: 'white',
    padding: 12,
    data: { values: data },
    transform: [
      { calculate: `datum.alpha - ${step / 2}`, as: 'a0' },
      { calculate: `datum.alpha + ${step / 2}`, as: 'a1' },
      { calculate: `datum.beta - ${step / 2}`, as: 'b0' },
      { calculate: `datum.beta + ${step / 2}`, as: 'b1' },
    ],
    mark: 'rect',
    encoding: {
      x: { field: 'a0', type: 'quantitative', title: 'α (direction 1)' },
      x2: { field: 'a1' },
      y: { field: 'b0', type: 'quantitative', title: 'β (direction 2)' },
      y2: { field: 'b1' },
      color: {
        field: 'loss',
        type: 'quantitative',
        title: 'training loss',
        scale: { type: 'threshold', domain: thresholds, scheme: 'viridis' },
        legend: { format: '.3~g' },
      },
    },
    config: PLOT_CONFIG,
  };
}
