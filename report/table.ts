// report/: report rendering for `lth report` and the benchmarks (bench/imp.ts); imports contract/ only.
// Tables for `lth report`: the per-level results of each branch of a lottery-ticket experiment
// (the ticket itself and its controls), as aligned plain text for the terminal and as Markdown
// for a file. Pure string formatting: no I/O, no dependencies.

export interface LevelRow {
  /** Pruning level, 0 = the dense network. */
  level: number;
  /** % of prunable weights remaining, e.g. 100, 80, 64, 51.2. */
  remainingPct: number;
  /** Best test accuracy over the run, as a fraction in [0, 1]. */
  bestTestAccuracy: number;
  /** Training step at which `bestTestAccuracy` was reached. */
  bestIteration: number;
  /** Test accuracy at the end of training, as a fraction in [0, 1]. */
  finalTestAccuracy: number;
}

/** One branch of the experiment, e.g. 'ticket', 'reinit', 'random-prune', 'one-shot'. */
export interface ReportSeries {
  name: string;
  rows: LevelRow[];
}

const MISSING = '-';

/** The columns of both tables, in order, with how each cell is written. */
const COLUMNS: { header: string; cell: (r: LevelRow) => string }[] = [
  { header: 'level', cell: (r) => formatInteger(r.level) },
  { header: '% remaining', cell: (r) => formatRemainingPct(r.remainingPct) },
  { header: 'best test acc (%)', cell: (r) => formatAccuracyPct(r.bestTestAccuracy) },
  { header: '@ iteration', cell: (r) => formatInteger(r.bestIteration) },
  { header: 'final test acc (%)', cell: (r) => formatAccuracyPct(r.finalTestAccuracy) },
];

/** % of weights remaining: one decimal (100.0, 51.2, 1.8), two significant digits below 1% (0.59). */
export function formatRemainingPct(pct: number): string {
  if (!Number.isFinite(pct)) return MISSING;
  return pct >= 1 ? pct.toFixed(1) : pct.toPrecision(2);
}

/** An accuracy given as a fraction, written as a percentage with two decimals: 0.98123 -> '98.12'. */
export function formatAccuracyPct(fraction: number): string {
  return Number.isFinite(fraction) ? (fraction * 100).toFixed(2) : MISSING;
}

function formatInteger(n: number): string {
  return Number.isFinite(n) ? String(Math.round(n)) : MISSING;
}

function sortedRows(rows: LevelRow[]): LevelRow[] {
  return [...rows].sort((a, b) => a.level - b.level);
}

/**
 * The report as plain text for the terminal: one block per series, headed by its name, with the
 * levels in ascending order and numbers right-aligned.
 */
export function formatReportTable(series: ReportSeries[]): string {
  if (series.length === 0) return '(no results)\n';
  const blocks = series.map((s) => {
    const rows = sortedRows(s.rows);
    if (rows.length === 0) return `${s.name}\n  (no levels)`;
    const cells = rows.map((r) => COLUMNS.map((c) => c.cell(r)));
    const widths = COLUMNS.map((c, i) => Math.max(c.header.length, ...cells.map((row) => row[i]!.length)));
    const line = (parts: string[]) => '  ' + parts.map((p, i) => p.padStart(widths[i]!)).join('  ');
    return [
      s.name,
      line(COLUMNS.map((c) => c.header)),
      line(widths.map((w) => '-'.repeat(w))),
      ...cells.map(line),
    ].join('\n');
  });
  return blocks.join('\n\n') + '\n';
}

function escapeMarkdownCell(text: string): string {
  return text.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * The report as one GitHub-flavoured Markdown table with a `series` column (same numbers as
 * formatReportTable), for writing to a file.
 */
export function formatReportMarkdown(series: ReportSeries[]): string {
  const header = ['series', ...COLUMNS.map((c) => c.header)];
  const align = ['---', ...COLUMNS.map(() => '---:')];
  const row = (cells: string[]) => `| ${cells.join(' | ')} |`;
  const lines = [row(header), row(align)];
  for (const s of series) {
    for (const r of sortedRows(s.rows)) {
      lines.push(row([escapeMarkdownCell(s.name), ...COLUMNS.map((c) => c.cell(r))]));
    }
  }
  return lines.join('\n') + '\n';
}
