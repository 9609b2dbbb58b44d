// report/: report rendering for `lth report` and the benchmarks (bench/imp.ts); imports contract/ only.
// The rendering half of `lth report`: terminal and Markdown tables of the per-level results, and
// the accuracy-vs-sparsity plot as SVG or PNG.
export { formatReportMarkdown, formatReportTable, type LevelRow, type ReportSeries } from './table';
export {
  accuracyPlotSpec,
  renderAccuracyPlot,
  svgToPng,
  type PlotOptions,
  type PlotPoint,
  type PlotSeries,
} from './plot';
