// report/: the distillation report: per variant (how the student learned and from which teachers), the final test
// accuracy over seeds (mean ± sample std), and a plot of test accuracy against epochs, one line per variant (the
// mean over seeds at each evaluation).
import type { TopLevelSpec } from 'vega-lite';

import type { DistillSpec } from '../contract/distill';
import { PLOT_CONFIG, renderSpec } from './plot';

/** One finished (or running) distillation run, as the report reads it. */
export interface DistillRunRow {
  variant: string;
  seed: number;
  /** Final test accuracy; null while the run has not finished. */
  testAccuracy: number | null;
  /** Test evaluations, with the epoch they were taken at. */
  evals: { epoch: number; testAccuracy: number }[];
}

export interface VariantSummary {
  variant: string;
  mean: number;
  std: number;
  n: number;
  seeds: number[];
}

/** A variant's name: the mode and the teachers it learns from (`student` for none), e.g. `tokens(cnn+involution)`. */
export function distillVariant(spec: DistillSpec): string {
  const drop = [
    spec.student.dropout ? `dropout=${spec.student.dropout}` : '',
    spec.student.dropPath ? `drop-path=${spec.student.dropPath}` : '',
  ].filter(Boolean);
  const regularised = drop.length > 0 ? ` [${drop.join(', ')}]` : '';
  if (spec.kd.mode === 'none' || spec.teachers.length === 0) return `student${regularised}`;
  const tau =
    spec.kd.mode === 'deit-hard' ? '' : spec.kd.temperature !== 1 ? `, τ=${spec.kd.temperature}` : '';
  const f = spec.kd.features;
  const features = f ? ` +features(${f.teacher}${f.weight !== 1 ? `, w=${f.weight}` : ''})` : '';
  return `${spec.kd.mode}(${spec.teachers.map((t) => t.name).join('+')}${tau})${features}${regularised}`;
}

export function summariseVariants(rows: DistillRunRow[]): VariantSummary[] {
  const groups = new Map<string, DistillRunRow[]>();
  for (const r of rows)
    if (r.testAccuracy !== null) groups.set(r.variant, [...(groups.get(r.variant) ?? []), r]);
  return [...groups.entries()]
    .map(([variant, rs]) => {
      const xs = rs.map((r) => r.testAccuracy as number);
      const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
      const std =
        xs.length < 2 ? 0 : Math.sqrt(xs.reduce((a, x) => a + (x - mean) ** 2, 0) / (xs.length - 1));
      return { variant, mean, std, n: xs.length, seeds: rs.map((r) => r.seed).sort((a, b) => a - b) };
    })
    .sort((a, b) => b.mean - a.mean);
}

const pct = (x: number) => (100 * x).toFixed(2);

/** The table on the terminal: variants by mean final test accuracy, best first. */
export function formatDistillTable(summary: VariantSummary[]): string {
  const width = Math.max(7, ...summary.map((s) => s.variant.length));
  const lines = [`${'variant'.padEnd(width)}  test accuracy (%)   seeds`];
  for (const s of summary) {
    lines.push(
      `${s.variant.padEnd(width)}  ${`${pct(s.mean)} ± ${pct(s.std)}`.padEnd(17)}   ${s.seeds.join(',')}`,
    );
  }
  return `${lines.join('\n')}\n`;
}

export function formatDistillMarkdown(summary: VariantSummary[]): string {
  return [
    '| variant | test accuracy (%) | n | seeds |',
    '| --- | --- | --- | --- |',
    ...summary.map(
      (s) => `| ${s.variant} | ${pct(s.mean)} ± ${pct(s.std)} | ${s.n} | ${s.seeds.join(', ')} |`,
    ),
  ].join('\n');
}

/** The mean over seeds of each variant's test accuracy at each evaluation epoch. */
export function epochCurves(rows: DistillRunRow[]): { variant: string; epoch: number; accuracy: number }[] {
  const acc = new Map<string, { sum: number; n: number }>();
  for (const r of rows) {
    for (const e of r.evals) {
      const k = JSON.stringify([r.variant, Math.round(e.epoch * 1000) / 1000]);
      const a = acc.get(k) ?? { sum: 0, n: 0 };
      acc.set(k, { sum: a.sum + e.testAccuracy, n: a.n + 1 });
    }
  }
  return [...acc.entries()].map(([k, a]) => {
    const [variant, epoch] = JSON.parse(k) as [string, number];
    return { variant, epoch, accuracy: (100 * a.sum) / a.n };
  });
}

export function epochPlotSpec(rows: DistillRunRow[], title?: string): TopLevelSpec {
  const data = epochCurves(rows);
  if (data.length === 0) throw new Error('no evaluations to plot');
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(title ? { title } : {}),
    width: 560,
    height: 340,
    background: 'white',
    padding: 12,
    data: { values: data },
    mark: { type: 'line', strokeWidth: 2, point: { filled: true, size: 40 } },
    encoding: {
      x: { field: 'epoch', type: 'quantitative', title: 'epoch' },
      y: {
        field: 'accuracy',
        type: 'quantitative',
        title: 'test accuracy (%), mean over seeds',
        scale: { zero: false },
      },
      color: { field: 'variant', type: 'nominal', title: null, scale: { scheme: 'tableau10' } },
    },
    config: PLOT_CONFIG,
  };
}

export function renderEpochPlot(
  rows: DistillRunRow[],
  format: 'svg' | 'png',
  title?: string,
): Promise<Buffer> {
  return renderSpec(epochPlotSpec(rows, title), format);
}
