// The rendering half of `lth report`: tables and the accuracy-vs-sparsity plot. Needs no services.
//   node --import tsx --test test/report-render.test.ts
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { Resvg } from '@resvg/resvg-js';

import { pngFontOptions, svgToPng, xTickValues } from '../report/plot';
import {
  accuracyPlotSpec,
  formatReportMarkdown,
  formatReportTable,
  renderAccuracyPlot,
  type PlotSeries,
  type ReportSeries,
} from '../report/render';
import { textWidth } from '../report/text-width';

const LEVELS = Array.from({ length: 12 }, (_, i) => 100 * 0.8 ** i); // 100, 80, 64, 51.2, ... 8.59

const REPORT: ReportSeries[] = [
  {
    name: 'ticket',
    rows: [
      // deliberately out of order: the table sorts by level
      {
        level: 2,
        remainingPct: 64,
        bestTestAccuracy: 0.98456,
        bestIteration: 14000,
        finalTestAccuracy: 0.9831,
      },
      {
        level: 0,
        remainingPct: 100,
        bestTestAccuracy: 0.9812,
        bestIteration: 15000,
        finalTestAccuracy: 0.9799,
      },
      { level: 1, remainingPct: 80, bestTestAccuracy: 0.9834, bestIteration: 12500, finalTestAccuracy: 0.98 },
      {
        level: 3,
        remainingPct: 51.2,
        bestTestAccuracy: 0.9841,
        bestIteration: 9000,
        finalTestAccuracy: 0.9805,
      },
    ],
  },
  {
    name: 'random-prune',
    rows: [
      {
        level: 0,
        remainingPct: 100,
        bestTestAccuracy: 0.9812,
        bestIteration: 15000,
        finalTestAccuracy: 0.9799,
      },
      { level: 20, remainingPct: 0.4, bestTestAccuracy: 0.5, bestIteration: 300, finalTestAccuracy: 0.25 },
    ],
  },
];

test('the terminal table has one block per series and one formatted row per level, in level order', () => {
  const text = formatReportTable(REPORT);
  const lines = text.split('\n');
  const ticketAt = lines.indexOf('ticket');
  const randomAt = lines.indexOf('random-prune');
  assert.ok(ticketAt >= 0 && randomAt > ticketAt, text);
  const header = lines[ticketAt + 1]!;
  for (const col of ['level', '% remaining', 'best test acc (%)', '@ iteration', 'final test acc (%)']) {
    assert.ok(header.includes(col), `header lacks '${col}': ${header}`);
  }
  const rows = (from: number, to: number) =>
    lines
      .slice(from, to)
      .filter((l) => /^\s+\d/.test(l))
      .map((l) => l.trim().split(/\s+/));
  assert.deepEqual(rows(ticketAt, randomAt), [
    ['0', '100.0', '98.12', '15000', '97.99'],
    ['1', '80.0', '98.34', '12500', '98.00'],
    ['2', '64.0', '98.46', '14000', '98.31'],
    ['3', '51.2', '98.41', '9000', '98.05'],
  ]);
  assert.deepEqual(rows(randomAt, lines.length), [
    ['0', '100.0', '98.12', '15000', '97.99'],
    ['20', '0.40', '50.00', '300', '25.00'],
  ]);
  // right-aligned: every line of a block is as wide as its header
  const block = lines.slice(ticketAt + 1, randomAt - 1);
  assert.ok(
    block.every((l) => l.length === header.length),
    block.join('\n'),
  );
});

test('the Markdown table carries the same numbers with a series column', () => {
  const md = formatReportMarkdown([...REPORT, { name: 'a|b', rows: [REPORT[0]!.rows[1]!] }]);
  const lines = md.trim().split('\n');
  assert.equal(
    lines[0],
    '| series | level | % remaining | best test acc (%) | @ iteration | final test acc (%) |',
  );
  assert.match(lines[1]!, /^\| ---+ \|( ---+: \|){5}$/);
  assert.equal(lines.length, 2 + 4 + 2 + 1);
  assert.equal(lines[2], '| ticket | 0 | 100.0 | 98.12 | 15000 | 97.99 |');
  assert.equal(lines[5], '| ticket | 3 | 51.2 | 98.41 | 9000 | 98.05 |');
  assert.equal(lines[7], '| random-prune | 20 | 0.40 | 50.00 | 300 | 25.00 |');
  assert.equal(lines[8], '| a\\|b | 0 | 100.0 | 98.12 | 15000 | 97.99 |');
});

const PLOT: PlotSeries[] = [
  {
    name: 'ticket',
    points: LEVELS.map((p, i) => ({ remainingPct: p, accuracy: 0.975 + 0.0005 * i, std: 0.002 })),
  },
  { name: 'reinit', points: LEVELS.map((p, i) => ({ remainingPct: p, accuracy: 0.975 - 0.003 * i })) },
  {
    name: 'random-prune & co',
    points: LEVELS.map((p, i) => ({ remainingPct: p, accuracy: 0.975 - 0.004 * i })),
  },
];

/** Checks that tags nest and close properly and that '&' only starts entities. Returns the root tag. */
function assertWellFormed(xml: string): string {
  const stack: string[] = [];
  let root = '';
  for (const m of xml.matchAll(/<(\/?)([A-Za-z][\w:.-]*)(?:\s[^<>]*?)?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the wrong element`);
    else if (!selfClosing) {
      if (!root) root = name!;
      stack.push(name!);
    }
  }
  assert.deepEqual(stack, [], 'unclosed elements');
  assert.doesNotMatch(xml, /&(?!amp;|lt;|gt;|quot;|apos;|#\d+;|#x[0-9a-f]+;)/i, 'bare & in XML');
  return root;
}

interface Label {
  text: string;
  x: number;
  y: number;
}

/** The tick labels of each axis in a Vega SVG, in document order of the axes. */
function axisLabels(svg: string): Label[][] {
  const groups = svg.split('class="mark-text role-axis-label"').slice(1);
  return groups.map((g) => {
    const body = g.slice(0, g.indexOf('</g>'));
    return [
      ...body.matchAll(/<text[^>]*transform="translate\(([-\d.e]+),([-\d.e]+)\)"[^>]*>([^<]*)<\/text>/g),
    ].map((m) => ({ x: Number(m[1]), y: Number(m[2]), text: m[3]! }));
  });
}

test('the SVG is well-formed and has the series names, axis titles and title', async () => {
  const svg = (await renderAccuracyPlot(PLOT, { format: 'svg', title: 'LeNet-300-100 / MNIST' })).toString(
    'utf8',
  );
  assert.equal(assertWellFormed(svg), 'svg');
  assert.match(svg, /^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
  for (const name of ['ticket', 'reinit', 'random-prune &amp; co'])
    assert.ok(svg.includes(`>${name}</text>`), name);
  assert.ok(svg.includes('>% of weights remaining (log scale)</text>'));
  assert.ok(svg.includes('>test accuracy (%)</text>'));
  assert.ok(svg.includes('>LeNet-300-100 / MNIST</text>'));
  const custom = (await renderAccuracyPlot(PLOT, { format: 'svg', yLabel: 'top-1 accuracy' })).toString(
    'utf8',
  );
  assert.ok(custom.includes('>top-1 accuracy</text>') && !custom.includes('>test accuracy (%)</text>'));
});

test('the x axis is logarithmic and reversed: 100% on the left, sparser to the right', async () => {
  const svg = (await renderAccuracyPlot(PLOT, { format: 'svg' })).toString('utf8');
  const axes = axisLabels(svg);
  // the x axis is the one whose labels all sit on one line
  const xAxis = axes.find((labels) => labels.length > 1 && labels.every((l) => l.y === labels[0]!.y));
  assert.ok(xAxis, 'no x axis labels found');
  const texts = xAxis.map((l) => l.text);
  assert.ok(texts.includes('100'), texts.join(' '));
  assert.ok(texts.includes('8.59'), texts.join(' ')); // the sparsest level, 100 * 0.8^11
  const byX = [...xAxis].sort((a, b) => a.x - b.x);
  assert.equal(byX[0]!.text, '100');
  const values = byX.map((l) => Number(l.text));
  for (let i = 1; i < values.length; i++) assert.ok(values[i]! < values[i - 1]!, `not decreasing: ${values}`);
  // log scale: pixel distance per decade is the same between any two ticks (labels are rounded)
  const perDecade = (a: Label, b: Label) => (b.x - a.x) / Math.log10(Number(a.text) / Number(b.text));
  const reference = perDecade(byX[0]!, byX[byX.length - 1]!);
  assert.ok(reference > 100, `${reference}px per decade`);
  for (let i = 1; i < byX.length; i++) {
    const d = perDecade(byX[i - 1]!, byX[i]!);
    assert.ok(Math.abs(d - reference) / reference < 0.02, `${d} vs ${reference} px/decade: not a log axis`);
  }
});

test('the y range follows the data instead of starting at 0', async () => {
  const svg = (await renderAccuracyPlot(PLOT, { format: 'svg' })).toString('utf8');
  // the y axis is the one whose labels all sit in one column
  const yAxis = axisLabels(svg).find(
    (labels) => labels.length > 1 && labels.every((l) => l.x === labels[0]!.x),
  );
  assert.ok(yAxis, 'no y axis labels found');
  const values = yAxis.map((l) => Number(l.text));
  // the points span 93.1% .. 98.05% (+ a 0.2% std)
  assert.ok(Math.min(...values) >= 90 && Math.min(...values) <= 93.1, `${values}`);
  assert.ok(Math.max(...values) >= 98.25 && Math.max(...values) <= 100, `${values}`);
});

test('error bars are drawn only when a std is given', () => {
  const withStd = accuracyPlotSpec(PLOT) as { layer: { mark: { type: string } }[] };
  assert.deepEqual(
    withStd.layer.map((l) => l.mark.type),
    ['errorbar', 'line'],
  );
  const without = accuracyPlotSpec(PLOT.slice(1)) as { layer: { mark: { type: string } }[] };
  assert.deepEqual(
    without.layer.map((l) => l.mark.type),
    ['line'],
  );
});

test('the PNG is a PNG of twice the SVG size', async () => {
  const [svg, png] = await Promise.all([
    renderAccuracyPlot(PLOT, { format: 'svg' }),
    renderAccuracyPlot(PLOT, { format: 'png', title: 'png' }),
  ]);
  assert.ok(png.length > 10_000, `${png.length} bytes`);
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  assert.equal(png.subarray(12, 16).toString('ascii'), 'IHDR');
  const width = png.readUInt32BE(16);
  const height = png.readUInt32BE(20);
  const svgWidth = Number(/width="(\d+)"/.exec(svg.toString('utf8'))![1]);
  assert.equal(width, 2 * svgWidth);
  assert.ok(height > 600 && height < width, `${width}x${height}`);
});

/** Pixels with any ink when resvg draws `svg` with these font settings. */
function inkedPixels(svg: string, font: NonNullable<ConstructorParameters<typeof Resvg>[1]>['font']): number {
  const { pixels } = new Resvg(svg, { font, logLevel: 'off' }).render();
  let ink = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i]! > 0) ink++;
  return ink;
}

test('PNG text is drawn with the bundled fonts, whatever fonts the system has', async () => {
  const text = (weight: string) =>
    `<svg xmlns="http://www.w3.org/2000/svg" width="300" height="40"><text x="5" y="30" font-family="DejaVu Sans, sans-serif" font-weight="${weight}" font-size="24">ticket 97.9%</text></svg>`;
  const font = await pngFontOptions();
  assert.equal(font.loadSystemFonts, false);
  // Without any font resvg draws no text at all: that is what a fontless server gave before.
  assert.equal(inkedPixels(text('normal'), { loadSystemFonts: false }), 0);
  const regular = inkedPixels(text('normal'), font);
  const bold = inkedPixels(text('bold'), font);
  assert.ok(regular > 300, `${regular} inked pixels`);
  assert.ok(bold > regular, `bold ${bold} vs regular ${regular}`);
  // The same bytes on every call (and so on every machine with this package set).
  const png = await svgToPng(text('normal'));
  assert.deepEqual(await svgToPng(text('normal')), png);
});

test('one to six series with one to twenty points each all render', async () => {
  const names = ['ticket', 'reinit', 'random-prune', 'one-shot', 'ticket, late rewind (k=500)', 'dense'];
  for (const [nSeries, nPoints] of [
    [1, 1],
    [2, 3],
    [6, 20],
  ] as const) {
    const series = names.slice(0, nSeries).map((name, s) => ({
      name,
      points: Array.from({ length: nPoints }, (_, i) => ({
        remainingPct: 100 * 0.7 ** i,
        accuracy: 0.9 - 0.01 * s - 0.005 * i,
        std: s % 2 ? 0.01 : undefined,
      })),
    }));
    const svg = (await renderAccuracyPlot(series, { format: 'svg' })).toString('utf8');
    assertWellFormed(svg);
    for (const { name } of series)
      assert.ok(svg.includes(`>${name}</text>`), `${nSeries}x${nPoints}: ${name}`);
    // long names are laid out at their width, not cut short with an ellipsis
    assert.ok(!svg.includes('…'), `${nSeries}x${nPoints}: a label was truncated`);
  }
});

test('bad input fails loudly', async () => {
  await assert.rejects(renderAccuracyPlot([], { format: 'svg' }), /no series/);
  const pct = [{ name: 'ticket', points: [{ remainingPct: 100, accuracy: 98.1 }] }];
  await assert.rejects(renderAccuracyPlot(pct, { format: 'svg' }), /fraction in \[0, 1\]/);
  const zero = [{ name: 'ticket', points: [{ remainingPct: 0, accuracy: 0.1 }] }];
  await assert.rejects(renderAccuracyPlot(zero, { format: 'png' }), /remainingPct/);
  const twice = [PLOT[0]!, PLOT[0]!];
  await assert.rejects(renderAccuracyPlot(twice, { format: 'svg' }), /duplicate series name 'ticket'/);
});

test('x ticks: the data values, thinned evenly on the log axis, keeping the densest and the sparsest', () => {
  assert.deepEqual(xTickValues([100]), [100]);
  assert.deepEqual(xTickValues([51.2, 100, 100]), [100, 51.2]);
  const twenty = Array.from({ length: 20 }, (_, i) => 100 * 0.8 ** i);
  const ticks = xTickValues(twenty);
  assert.ok(ticks.length >= 5 && ticks.length <= 9, `${ticks}`);
  assert.equal(ticks[0], 100);
  assert.equal(ticks[ticks.length - 1], twenty[19]);
  for (const t of ticks) assert.ok(twenty.includes(t));
});

test('text widths follow DejaVu Sans metrics instead of 0.8 em per character', () => {
  assert.equal(textWidth({ fontSize: 10 }, 'iiii'), 4 * 0.278 * 10);
  assert.equal(textWidth({ fontSize: 10 }, 'MMMM'), 4 * 0.863 * 10);
  assert.ok(textWidth({ fontSize: 10, fontWeight: 'bold' }, 'abc') > textWidth({ fontSize: 10 }, 'abc'));
  assert.equal(textWidth({}, ''), 0);
});
