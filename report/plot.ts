// report/: report rendering for `lth report` and the benchmarks (bench/imp.ts); imports contract/ only.
// The accuracy-vs-sparsity plot of `lth report`, drawn the way the lottery-ticket papers draw it:
// test accuracy (%) against % of weights remaining on a reversed log axis (dense on the left,
// sparser to the right), one line with markers per branch, error bars where a std is known.
//
// The chart is a Vega-Lite spec rendered headlessly to SVG by Vega (renderer 'none', no canvas);
// PNG is that SVG rasterised by resvg (a prebuilt native addon shipped as an npm optional
// dependency, nothing built or downloaded at install time). Both are loaded lazily: `vega` and
// `vega-lite` are ESM-only and use top-level await, so they cannot be require()d from this
// CommonJS code, only import()ed; and the rest of the CLI should not pay for loading them.
import type { ResvgRenderOptions } from '@resvg/resvg-js';
import type { TopLevelSpec } from 'vega-lite';

import { PLOT_FONT_FAMILY, plotFontFiles } from './fonts';
import { installTextWidth } from './text-width';

export interface PlotPoint {
  /** % of prunable weights remaining, > 0 (log axis). */
  remainingPct: number;
  /** Test accuracy as a fraction in [0, 1] (plotted in %). */
  accuracy: number;
  /** Standard deviation of `accuracy` over seeds, same unit (a fraction); draws an error bar. */
  std?: number;
}

export interface PlotSeries {
  name: string;
  points: PlotPoint[];
}

export interface PlotOptions {
  format: 'svg' | 'png';
  title?: string;
  /** Default 'test accuracy (%)'. */
  yLabel?: string;
  /** Default '% of weights remaining (log scale)'. */
  xLabel?: string;
}

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite');
type ResvgModule = typeof import('@resvg/resvg-js');

const WIDTH = 560;
const HEIGHT = 340;
/** PNG pixels per SVG pixel, so the raster stays sharp on a high-density screen or in a paper. */
const PNG_ZOOM = 2;
/** Families present on common Linux images first; resvg and browsers take the first one they have. */
const FONT = 'DejaVu Sans, Liberation Sans, Helvetica, Arial, sans-serif';
/** The look every plot of the reports shares: font, axes, legend, title, frame. */
export const PLOT_CONFIG = {
  font: FONT,
  axis: { labelFontSize: 11, titleFontSize: 12, gridColor: '#e6e6e6' },
  legend: { labelFontSize: 12 },
  title: { fontSize: 14 },
  view: { stroke: '#bbbbbb' },
};
const SHAPES = ['circle', 'square', 'triangle-up', 'diamond', 'cross', 'triangle-down'];
/** At most this many labelled ticks on the x axis. */
const MAX_X_TICKS = 9;

interface Datum {
  series: string;
  remainingPct: number;
  accuracy: number;
  lo: number | null;
  hi: number | null;
}

function validate(series: PlotSeries[]): void {
  if (series.length === 0) throw new Error('renderAccuracyPlot: no series to plot');
  const seen = new Set<string>();
  for (const s of series) {
    if (seen.has(s.name)) throw new Error(`renderAccuracyPlot: duplicate series name '${s.name}'`);
    seen.add(s.name);
    for (const p of s.points) {
      const where = `series '${s.name}' at ${p.remainingPct}% remaining`;
      if (!(Number.isFinite(p.remainingPct) && p.remainingPct > 0 && p.remainingPct <= 100)) {
        throw new Error(`renderAccuracyPlot: ${where}: remainingPct must be in (0, 100]`);
      }
      if (!(Number.isFinite(p.accuracy) && p.accuracy >= 0 && p.accuracy <= 1)) {
        throw new Error(
          `renderAccuracyPlot: ${where}: accuracy must be a fraction in [0, 1], got ${p.accuracy}`,
        );
      }
      if (p.std !== undefined && !(Number.isFinite(p.std) && p.std >= 0)) {
        throw new Error(`renderAccuracyPlot: ${where}: std must be a finite number >= 0, got ${p.std}`);
      }
    }
  }
  if (series.every((s) => s.points.length === 0)) throw new Error('renderAccuracyPlot: no points to plot');
}

function toData(series: PlotSeries[]): Datum[] {
  return series.flatMap((s) =>
    s.points.map((p) => ({
      series: s.name,
      remainingPct: p.remainingPct,
      accuracy: p.accuracy * 100,
      lo: p.std === undefined ? null : Math.max(0, (p.accuracy - p.std) * 100),
      hi: p.std === undefined ? null : Math.min(100, (p.accuracy + p.std) * 100),
    })),
  );
}

/**
 * The x ticks: the remaining percentages that occur in the data (as in the papers, so each level
 * can be read off), thinned to be evenly readable on the log axis; the densest and the sparsest
 * are always kept.
 */
export function xTickValues(values: number[]): number[] {
  const distinct = [...new Set(values)].sort((a, b) => b - a);
  if (distinct.length <= 2) return distinct;
  const first = distinct[0]!;
  const last = distinct[distinct.length - 1]!;
  const minGap = Math.log10(first / last) / (MAX_X_TICKS - 1);
  const kept = [first];
  for (const v of distinct.slice(1)) {
    if (Math.log10(kept[kept.length - 1]! / v) >= minGap * 0.999) kept.push(v);
  }
  if (kept[kept.length - 1] !== last) {
    // Make room for the sparsest level, which matters most.
    if (kept.length > 1 && Math.log10(kept[kept.length - 1]! / last) < minGap) kept.pop();
    kept.push(last);
  }
  return kept;
}

/** The x domain, [densest, sparsest] padded a little in log space so that markers are not cut. */
export function xDomain(values: number[]): [number, number] {
  const max = Math.max(...values);
  const min = Math.min(...values);
  const decades = Math.log10(max / min);
  const pad = decades === 0 ? 0.15 : Math.max(0.02, decades * 0.04);
  return [min / 10 ** pad, max * 10 ** pad];
}

/** The y domain in %: the data (and error bars) with some headroom, not forced down to 0. */
function yDomain(data: Datum[]): [number, number] {
  const lows = data.map((d) => d.lo ?? d.accuracy);
  const highs = data.map((d) => d.hi ?? d.accuracy);
  const lo = Math.min(...lows);
  const hi = Math.max(...highs);
  const pad = Math.max((hi - lo) * 0.08, 0.5);
  return [Math.max(0, lo - pad), Math.min(100, hi + pad)];
}

/** The Vega-Lite spec of the plot (exported for tests and for anyone who wants the JSON). */
export function accuracyPlotSpec(series: PlotSeries[], opts: Omit<PlotOptions, 'format'> = {}): TopLevelSpec {
  validate(series);
  const data = toData(series);
  const names = series.map((s) => s.name);
  const xs = data.map((d) => d.remainingPct);
  const hasStd = data.some((d) => d.lo !== null);

  const x = {
    field: 'remainingPct',
    type: 'quantitative' as const,
    title: opts.xLabel ?? '% of weights remaining (log scale)',
    scale: { type: 'log' as const, reverse: true, domain: xDomain(xs), nice: false },
    axis: { values: xTickValues(xs), format: '.3~r', grid: true, labelOverlap: false },
  };
  const y = {
    field: 'accuracy',
    type: 'quantitative' as const,
    title: opts.yLabel ?? 'test accuracy (%)',
    scale: { zero: false, domain: yDomain(data), nice: true },
  };
  const color = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: { domain: names, scheme: 'tableau10' },
    legend: { orient: 'right' as const, labelLimit: 240, symbolOpacity: 1, symbolSize: 80 },
  };
  const shape = {
    field: 'series',
    type: 'nominal' as const,
    title: null,
    scale: { domain: names, range: names.map((_, i) => SHAPES[i % SHAPES.length]!) },
  };

  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    ...(opts.title ? { title: opts.title } : {}),
    width: WIDTH,
    height: HEIGHT,
    background: 'white',
    padding: 12,
    data: { values: data },
    encoding: { x, color },
    layer: [
      ...(hasStd
        ? [
            {
              transform: [{ filter: 'isValid(datum.lo)' }],
              mark: { type: 'errorbar' as const, ticks: true, thickness: 1.2 },
              encoding: {
                y: { ...y, field: 'lo' },
                y2: { field: 'hi' },
              },
            },
          ]
        : []),
      {
        mark: { type: 'line' as const, strokeWidth: 2, point: { filled: true, size: 55 } },
        encoding: { y, shape },
      },
    ],
    config: PLOT_CONFIG,
  };
}

let libs: Promise<{ vega: Vega; vl: VegaLite }> | undefined;
function loadVega(): Promise<{ vega: Vega; vl: VegaLite }> {
  libs ??= Promise.all([import('vega'), import('vega-lite')]).then(([vega, vl]) => {
    installTextWidth(vega);
    return { vega, vl };
  });
  return libs;
}

/**
 * resvg's font settings: the bundled DejaVu Sans only, not the system's fonts, so that a PNG has its text on a
 * machine without fonts and the same pixels everywhere (plot text is ASCII: experiment names, branch labels).
 */
export async function pngFontOptions(): Promise<NonNullable<ResvgRenderOptions['font']>> {
  return {
    loadSystemFonts: false,
    fontFiles: await plotFontFiles(),
    defaultFontFamily: PLOT_FONT_FAMILY,
    sansSerifFamily: PLOT_FONT_FAMILY,
  };
}

/** Rasterise an SVG to PNG with resvg and the bundled fonts. */
export async function svgToPng(svg: string, zoom = PNG_ZOOM): Promise<Buffer> {
  const { renderAsync }: ResvgModule = await import('@resvg/resvg-js');
  const image = await renderAsync(svg, {
    fitTo: { mode: 'zoom', value: zoom },
    background: 'white',
    font: await pngFontOptions(),
    logLevel: 'off',
  });
  return image.asPng();
}

/**
 * Test accuracy (%) against % of weights remaining, x on a reversed log scale, one line with
 * markers per series (1..10 are distinguishable; 6 by both colour and marker shape), a legend,
 * and error bars for points with a `std`. Returns the SVG text (UTF-8) or PNG bytes.
 */
export async function renderAccuracyPlot(series: PlotSeries[], opts: PlotOptions): Promise<Buffer> {
  return renderSpec(accuracyPlotSpec(series, opts), opts.format);
}

/** A Vega-Lite spec rendered headlessly to SVG text, or to PNG through resvg with the bundled fonts. */
export async function renderSpec(spec: TopLevelSpec, format: 'svg' | 'png'): Promise<Buffer> {
  const { vega, vl } = await loadVega();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    const svg = await view.toSVG();
    return format === 'svg' ? Buffer.from(svg, 'utf8') : await svgToPng(svg);
  } finally {
    view.finalize();
  }
}
