// report/: Markdown tables laid out the way prettier lays them out (every column padded to its widest cell), so a
// generated table in a prettier-formatted file is already in its final form and `prettier --check` stays quiet.
// Pure string formatting, plus the number formats the README's result tables share.

/**
 * Columns prettier measures: one per code point, except East Asian wide and fullwidth characters (two) and
 * combining marks (none). The tables here hold only narrow characters (±, ×, σ count one, as prettier counts
 * them), so the wide range below is a guard, not a full Unicode table.
 */
export function displayWidth(text: string): number {
  let width = 0;
  for (const ch of text) {
    const cp = ch.codePointAt(0) as number;
    if (cp >= 0x300 && cp <= 0x36f) continue;
    const wide =
      (cp >= 0x1100 && cp <= 0x115f) ||
      (cp >= 0x2e80 && cp <= 0xa4cf) ||
      (cp >= 0xac00 && cp <= 0xd7a3) ||
      (cp >= 0xf900 && cp <= 0xfaff) ||
      (cp >= 0xfe30 && cp <= 0xfe4f) ||
      (cp >= 0xff00 && cp <= 0xff60) ||
      (cp >= 0xffe0 && cp <= 0xffe6) ||
      (cp >= 0x1f300 && cp <= 0x1faff) ||
      (cp >= 0x20000 && cp <= 0x3fffd);
    width += wide ? 2 : 1;
  }
  return width;
}

/** A cell's text with the characters that would end a cell or a row escaped. */
function cellText(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');
}

/**
 * A GitHub-flavoured Markdown table, left-aligned, each column as wide as its widest cell (at least 3, the
 * shortest delimiter prettier writes), ending with a newline. Every row must have the header's cell count.
 */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[]): string {
  for (const [i, row] of rows.entries()) {
    if (row.length !== header.length)
      throw new Error(`row ${i} has ${row.length} cells, the header ${header.length}`);
  }
  const all = [header, ...rows].map((r) => r.map(cellText));
  const widths = header.map((_, c) => Math.max(3, ...all.map((r) => displayWidth(r[c] as string))));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((t, c) => t + ' '.repeat((widths[c] as number) - displayWidth(t))).join(' | ')} |`;
  const [head, ...body] = all as [string[], ...string[][]];
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...body.map(line)].join('\n') + '\n';
}

export const bold = (text: string): string => `**${text}**`;

/** 12345.6 -> '12,346'. Grouped by hand: toLocaleString would depend on the ICU data and locale of the machine. */
export function formatThousands(n: number): string {
  const sign = n < 0 ? '-' : '';
  return sign + String(Math.abs(Math.round(n))).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
}

/**
 * A throughput or a count: a whole number with thousands separators (1,084), one significant digit below 1 (0.9).
 * The benches' own noise (±20% and more) makes any further digit meaningless.
 */
export function formatRate(n: number): string {
  return Math.abs(n) < 1 && n !== 0 ? n.toPrecision(1) : formatThousands(n);
}

/** A ratio with two decimals and a times sign: 0.8441 -> '0.84×'. */
export const formatRatio = (r: number): string => `${r.toFixed(2)}×`;

/** Mean ± std of fractions, as percentages with two decimals: '97.90 ± 0.06'. */
export const formatPctMeanStd = (mean: number, std: number): string =>
  `${(mean * 100).toFixed(2)} ± ${(std * 100).toFixed(2)}`;
