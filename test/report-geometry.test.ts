// The geometry section of `lth report`: rows per (run, level) merged over analyses (a later one's value wins), the
// Markdown table with only the columns measured, and a plot per measure with two or more levels, rendered to SVG.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import type { AnalysisResult, MeasureRecord } from '../contract/analysis';
import {
  chosenLevels,
  contourPlotSpec,
  formatGeometryMarkdown,
  formatGeometryText,
  geometryPlots,
  geometryRows,
  slicesPlotSpec,
} from '../report/geometry';
import { renderSpec } from '../report/plot';

function record(measure: MeasureRecord['measure'], summary: Record<string, number>): MeasureRecord {
  return { measure, resultKey: 'r', arraysKey: 'a', summary, reused: false, resumedFrom: 0, seconds: 1 };
}

const first: AnalysisResult = {
  targets: [
    { label: 'trunk', level: 0, remainingPct: 100, measures: [record('hessian', { topEigenvalue: 12.5 })] },
    { label: 'trunk', level: 1, remainingPct: 51.2, measures: [record('hessian', { topEigenvalue: 20 })] },
    { label: 'reinit-s1', level: 1, remainingPct: 51.2, measures: [record('hessian', { topEigenvalue: 3 })] },
  ],
};
const later: AnalysisResult = {
  targets: [
    {
      label: 'trunk',
      level: 1,
      remainingPct: 51.2,
      measures: [record('hessian', { topEigenvalue: 21 }), record('twin-path', { testErrorBarrier: 0.015 })],
    },
  ],
};

test('rows merge analyses per run and level, the trunk first, a later value winning', () => {
  const rows = geometryRows([first, later]);
  assert.deepEqual(
    rows.map((r) => [
      r.run,
      r.level,
      r.values.get('hessian.topEigenvalue'),
      r.values.get('twin-path.testErrorBarrier'),
    ]),
    [
      ['trunk', 0, 12.5, undefined],
      ['trunk', 1, 21, 0.015],
      ['reinit-s1', 1, 3, undefined],
    ],
  );
});

test('the table has the measured columns only, a dash where a level lacks one', () => {
  const md = formatGeometryMarkdown(geometryRows([first, later]));
  assert.equal(
    md,
    [
      '| run | level | % remaining | λmax | twin barrier |',
      '| --- | ---: | ---: | ---: | ---: |',
      '| trunk | 0 | 100.0 | 12.50 | - |',
      '| trunk | 1 | 51.2 | 21.00 | 0.01500 |',
      '| reinit-s1 | 1 | 51.2 | 3.000 | - |',
      '',
    ].join('\n'),
  );
});

test('a measure run over replicates shows its mean ± standard deviation and n', () => {
  const replicated: AnalysisResult = {
    targets: [
      {
        label: 'trunk',
        level: 2,
        remainingPct: 64,
        measures: [
          record('hessian', { topEigenvalue: 4.25, 'topEigenvalue.std': 0.125, 'topEigenvalue.n': 6 }),
          record('trace', { trace: 80, 'trace.std': 0, 'trace.n': 1 }),
        ],
      },
    ],
  };
  const md = formatGeometryMarkdown(geometryRows([replicated]));
  assert.match(md, /\| trunk \| 2 \| 64\.0 \| 4\.250 ± 0\.1250 \(n=6\) \| 80\.00 \|/);
});

test('the CLI prints the same table as aligned text: names left, numbers right', () => {
  const text = formatGeometryText(geometryRows([first, later]));
  assert.equal(
    text,
    [
      'run        level  % remaining   λmax  twin barrier',
      'trunk          0        100.0  12.50             -',
      'trunk          1         51.2  21.00       0.01500',
      'reinit-s1      1         51.2  3.000             -',
    ].join('\n'),
  );
});

test('a plot per measure measured at two or more levels, rendered to SVG', async () => {
  const plots = geometryPlots(geometryRows([first, later]));
  assert.deepEqual(
    plots.map((p) => p.file),
    ['geometry-hessian-topEigenvalue'],
  );
  const svg = (await renderSpec(plots[0]!.spec, 'svg')).toString('utf8');
  assert.match(svg, /^<svg/);
  assert.match(svg, /top Hessian eigenvalue vs weights remaining/);
  assert.match(svg, /reinit-s1/);
});

test('slices overlaid and a 2D slice as a filled contour map render; chosen levels are first, middle, last', async () => {
  assert.deepEqual(chosenLevels([0, 1, 2, 3, 4, 5, 6]), [0, 3, 6]);
  assert.deepEqual(chosenLevels([0, 1]), [0, 1]);
  const axis = [-1, -0.5, 0, 0.5, 1];
  const bowl = (a: number, b = 0) => 0.1 + a * a + 2 * b * b;
  const oneD = [0, 3].map((level) => ({
    run: 'trunk',
    level,
    remainingPct: 100 / 2 ** level,
    axis,
    loss: axis.map((a) => bowl(a) * (level + 1)),
  }));
  const svg1 = (await renderSpec(slicesPlotSpec(oneD), 'svg')).toString('utf8');
  assert.match(svg1, /trunk L3 \(12\.5%\)/);
  const grid = { ...oneD[0]!, loss: axis.flatMap((a) => axis.map((b) => bowl(a, b))) };
  const svg2 = (await renderSpec(contourPlotSpec(grid), 'svg')).toString('utf8');
  assert.match(svg2, /training loss around trunk level 0/);
  // 25 cells, one rect mark each, and more than one colour band.
  assert.equal((svg2.match(/aria-roledescription="rect mark"/g) ?? []).length, 25);
  assert.ok(
    new Set(
      svg2.match(/aria-roledescription="rect mark" d="[^"]*" fill="[^"]*"/g)?.map((m) => m.split('fill=')[1]),
    ).size > 2,
  );
});
