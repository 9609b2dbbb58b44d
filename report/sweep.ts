// report/: a sweep's result table (one row per trial: its axis values, status and metrics, or its error) as text
// and Markdown, and the plot of one metric against the first numeric axis, one line per combination of the other
// axes, mean and standard deviation over the seed axes. Pure: a SweepResult comes in, strings and specs go out.
import type { TopLevelSpec } from 'vega-lite';

import type { SweepResult, TrialRow } from '../contract/sweep';
import { PLOT_CONFIG } from './plot';

/** Axes whose field is a seed are repeats: the plot averages over them. */
const isSeed = (field: string) => /(^|\.)seed$/i.test(field);

function valueText(v: unknown): string {
  return typeof v === 'string' ? v : JSON.stringify(v);
}

function metricText(v: number | undefined): string {
  if (v === undefined) return '-';
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v)) return String(v);
  return Math.abs(v) >= 1e4 || Math.abs(v) < 1e-3 ? v.toExponential(3) : v.toPrecision(4);
}

/** The metric names over all trials, in the order the first trials list them. */
export function metricNames(rows: TrialRow[]): string[] {
  const names: string[] = [];
  for (const r of rows) for (const k of Object.keys(r.metrics ?? {})) if (!names.includes(k)) names.push(k);
  return names;
}

export function sweepTable(result: SweepResult): { header: string[]; cells: string[][] } {
  const fields = result.rows[0]?.assignments.map(([f]) => f) ?? [];
  const metrics = metricNames(result.rows);
  const anyError = result.rows.some((r) => r.error !== undefined);
  return {
    header: ['trial', ...fields, 'status', ...metrics, ...(anyError ? ['error'] : [])],
    cells: result.rows.map((r) => [
      String(r.index),
      ...r.assignments.map(([, v]) => valueText(v)),
      r.status + (r.attached ? ' (attached)' : ''),
      ...metrics.map((m) => metricText(r.metrics?.[m])),
      ...(anyError ? [r.error ?? ''] : []),
    ]),
  };
}

export function formatSweepText(result: SweepResult): string {
  const { header, cells } = sweepTable(result);
  const widths = header.map((h, i) => Math.max(h.length, ...cells.map((c) => (c[i] ?? '').length)));
  const line = (c: string[]) =>
    c
      .map((x, i) => (i === c.length - 1 ? x : x.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  const failed = result.rows.filter((r) => r.status === 'failed').length;
  const head = `sweep ${result.sweep} (${result.kind}): ${result.rows.length} of ${result.total} trials finished, ${failed} failed`;
  return [head, line(header), ...cells.map(line)].join('\n');
}

export function formatSweepMarkdown(result: SweepResult): string {
  const { header, cells } = sweepTable(result);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${header.map(esc).join(' | ')} |`,
    `| ${header.map(() => '---').join(' | ')} |`,
    ...cells.map((c) => `| ${c.map(esc).join(' | ')} |`),
    '',
  ].join('\n');
}

/**
 * `metric` against the first axis whose values are all numbers, one line per combination of the other non-seed
 * axes, each point the mean over seed axes with a ±1 std bar. Null when no trial has the metric or no axis is numeric.
 */
export function sweepPlotSpec(result: SweepResult, metric: string): TopLevelSpec | null {
  const done = result.rows.filter((r) => r.metrics?.[metric] !== undefined);
  const fields = result.rows[0]?.assignments.map(([f]) => f) ?? [];
  const x = fields.find((f, i) => !isSeed(f) && done.every((r) => typeof r.assignments[i]?.[1] === 'number'));
  if (done.length === 0 || x === undefined) return null;
  const xi = fields.indexOf(x);
  const others = fields.map((f, i) => [f, i] as const).filter(([f, i]) => i !== xi && !isSeed(f));
  const values = done.map((r) => ({
    x: r.assignments[xi]?.[1] as number,
    series: others.map(([f, i]) => `${f}=${valueText(r.assignments[i]?.[1])}`).join(' ') || metric,
    value: r.metrics?.[metric] as number,
  }));
  const xs = values.map((v) => v.x);
  const log = Math.min(...xs) > 0 && Math.max(...xs) / Math.min(...xs) >= 100;
  const xEnc = {
    field: 'x',
    type: 'quantitative' as const,
    title: x,
    scale: { type: log ? ('log' as const) : ('linear' as const), zero: false },
  };
  const color = { field: 'series', type: 'nominal' as const, title: null, scale: { scheme: 'tableau10' } };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: `sweep ${result.sweep}: ${metric} vs ${x}`,
    width: 560,
    height: 340,
    background: 'white',
    padding: 12,
    data: { values },
    layer: [
      {
        mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 50 } },
        encoding: {
          x: xEnc,
          y: {
            aggregate: 'mean',
            field: 'value',
            type: 'quantitative',
            title: metric,
            scale: { zero: false },
          },
          color,
        },
      },
      {
        mark: { type: 'errorbar', extent: 'stdev', ticks: true },
        encoding: { x: xEnc, y: { field: 'value', type: 'quantitative', title: metric }, color },
      },
    ],
    config: PLOT_CONFIG,
  };
}
