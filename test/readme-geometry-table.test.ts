// The README's geometry table from bench/geometry.ts's per-seed result: which levels become rows, where ± stands
// with one seed (its replicates' std, marked r) and with several (std over seeds), that a missing value leaves its
// place empty, and that a malformed result names its field. The table is not yet in README.md (the committed result
// is of the older format), so these tests run the generator on a fixture trimmed from a --quick run and on results
// built here.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { REPO_ROOT } from '../infra/paths';
import { BenchResultError } from '../report/bench-results';
import { displayWidth } from '../report/markdown-table';
import { geometryTable } from '../report/readme-tables';

/** A fresh copy each time: tests edit it. */
const oneSeed = (): OneSeedFixture =>
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'test/fixtures/geometry-result-one-seed.json'), 'utf8'));

interface FixtureValue {
  mean: number | null;
  std: number | null;
  n: number;
  perSeed: (number | null)[];
  replicateStd: (number | null)[];
  replicateN: (number | null)[];
}
/** The fields of a level the tests edit (the fixture has every value the table shows). */
interface FixtureLevel {
  level: number;
  remainingPct: number | null;
  topEigenvalue: FixtureValue;
  trace: FixtureValue;
  barrierPrevLevel: FixtureValue;
}
interface OneSeedFixture {
  seeds: number[];
  series: { name: string; levels: FixtureLevel[] }[];
}

/** What bench/geometry.ts writes for a value no seed measured (one seed in the fixture). */
const notMeasured = (): FixtureValue => ({
  mean: null,
  std: null,
  n: 0,
  perSeed: [null],
  replicateStd: [null],
  replicateN: [null],
});

/** The caption line, and the table's header and body rows as trimmed cells. */
function parts(markdown: string): { caption: string; header: string[]; rows: string[][] } {
  const [caption, blank, ...table] = markdown.trimEnd().split('\n');
  assert.equal(blank, '', 'a blank line between the caption and the table');
  const widths = new Set(table.map(displayWidth));
  assert.equal(widths.size, 1, `every line of the table equally wide, as prettier aligns it`);
  const cells = (line: string) =>
    line
      .slice(1, -1)
      .split(' | ')
      .map((c) => c.trim());
  return { caption: caption as string, header: cells(table[0] as string), rows: table.slice(2).map(cells) };
}

const HEADER = [
  '% remaining',
  'λmax ticket / reinit / random / one-shot',
  'trace ticket / reinit',
  'PAC-Bayes σ ticket / reinit / random',
  'L-1→L barrier (test error, pt) ticket / random',
  'rewind→L barrier interpolated (pt) ticket',
  'twin barrier (pt)',
  'test error ticket / reinit / random / one-shot (%)',
];

test('one seed: each value with the std over its replicates marked r, level 0 once, a level near no target left out', () => {
  const { caption, header, rows } = parts(geometryTable(oneSeed()));
  assert.equal(
    caption,
    'One IMP seed (seed 1 of the planned 0, 1, 2): ± r is the std over its 2 data subsets × 2 probe seeds; ' +
      'a value without it is measured once. Level 0, the dense network, is shared by every series and stands once.',
  );
  assert.deepEqual(header, HEADER);
  // Levels 0, 1 (80.1%) and 2 (64.1%): 64.1 is more than 10% from 80 and from 51, so it is no row.
  assert.deepEqual(rows, [
    // Level 0: the ticket's values alone; its barriers to a previous level and to a twin do not exist (empty).
    ['100.0 (dense)', '12.1 (±1.0 r)', '189 (±42 r)', '0.0416 (±0.0012 r)', '', '0.00', '', '15.00'],
    [
      '80.1',
      '12.1 (±0.2 r) / 13.9 (±0.3 r) / 14.2 (±0.3 r) / 12.1 (±0.2 r)',
      '167 (±40 r) / 156 (±29 r)',
      '0.0317 (±0.0042 r) / 0.0390 (±0.0006 r) / 0.0357 (±0.0052 r)',
      // The random control has no L-1→L barrier at its first level: its slot is empty.
      '1.50 /',
      '0.00',
      '0.00',
      '14.00 / 14.00 / 14.00 / 14.00',
    ],
  ]);
  // Other targets reach the level at 64.1%.
  assert.deepEqual(
    parts(geometryTable(oneSeed(), [64])).rows.map((r) => r[0]),
    ['100.0 (dense)', '64.1'],
  );
});

test('a missing value leaves its place empty: a null mean, a level or a series absent', () => {
  const result = oneSeed();
  const [ticket, reinit, random] = result.series as [
    OneSeedFixture['series'][number],
    OneSeedFixture['series'][number],
    OneSeedFixture['series'][number],
  ];
  const level1 = (s: typeof ticket) => s.levels.find((l) => l.level === 1) as FixtureLevel;
  level1(reinit).topEigenvalue = notMeasured();
  level1(ticket).barrierPrevLevel = notMeasured();
  random.levels = random.levels.filter((l) => l.level !== 1);
  result.series = result.series.filter((s) => s.name !== 'one-shot');
  const row = parts(geometryTable(result)).rows[1] as string[];
  assert.deepEqual(row, [
    '80.1',
    '12.1 (±0.2 r) / / /',
    '167 (±40 r) / 156 (±29 r)',
    '0.0317 (±0.0042 r) / 0.0390 (±0.0006 r) /',
    // Neither the ticket's barrier nor the random control's level: nothing at all, an empty cell.
    '',
    '0.00',
    '0.00',
    '14.00 / 14.00 / /',
  ]);
});

/** A value over seeds 0, 1, 2 (perSeed is not read where n ≥ 2). */
const overSeeds = (mean: number, std: number): FixtureValue => ({
  mean,
  std,
  n: 3,
  perSeed: [mean, mean, mean],
  replicateStd: [std / 2, std / 2, std / 2],
  replicateN: [6, 6, 6],
});

/** A value only seed 1 has, with its replicates' std (null: a measure without replicates). */
const seedOneOnly = (mean: number, replicateStd: number | null): FixtureValue => ({
  mean,
  std: null,
  n: 1,
  perSeed: [null, mean, null],
  replicateStd: [null, replicateStd, null],
  replicateN: [null, replicateStd === null ? null : 6, null],
});

function threeSeedLevel(level: number, remainingPct: number, over: Record<string, FixtureValue> = {}) {
  return {
    level,
    remainingPct,
    topEigenvalue: overSeeds(4.2512, 0.1311),
    trace: overSeeds(123.44, 7.06),
    pacBayesSigma: overSeeds(0.031658, 0.0042),
    barrierPrevLevel: overSeeds(0.0125, 0.0031),
    barrierRewindInterpolated: overSeeds(0.002, 0.001),
    barrierTwin: overSeeds(0.001, 0.0005),
    testError: overSeeds(0.0198, 0.0006),
    ...over,
  };
}

function threeSeeds(levels: ReturnType<typeof threeSeedLevel>[]) {
  return {
    seeds: [0, 1, 2],
    seedsPlanned: [0, 1, 2],
    spec: { analysis: { replicates: { seeds: 3, subsets: 2 } } },
    series: ['ticket', 'reinit', 'random-prune', 'one-shot'].map((name) => ({ name, levels })),
  };
}

test('three seeds: mean ± std over them, each figure at its significant digits; one seed alone marked apart', () => {
  const result = threeSeeds([
    threeSeedLevel(0, 100),
    threeSeedLevel(1, 80),
    threeSeedLevel(2, 64),
    threeSeedLevel(3, 51.2, {
      // Three significant digits also above 1,000 and below 0.001: the std ends where the mean does.
      trace: overSeeds(1234.5, 37.2),
      pacBayesSigma: overSeeds(0.00099961, 0.0000312),
      // A barrier below half a hundredth of a point: 0.00, not -0.00.
      barrierRewindInterpolated: overSeeds(-0.00001, 0.00002),
    }),
    threeSeedLevel(5, 32.8, {
      // Seeds 0 and 2 lack these: seed 1's value with its replicates' spread, and a barrier measured once.
      topEigenvalue: seedOneOnly(5.5, 0.21),
      barrierTwin: seedOneOnly(0.004, null),
    }),
    threeSeedLevel(14, 4.4),
  ]);
  const { caption, header, rows } = parts(geometryTable(result));
  assert.equal(
    caption,
    "Mean ± std over 3 IMP seeds (0, 1, 2). A value marked (±x r) or without ± is one seed's alone; " +
      '± r is the std over its 2 data subsets × 3 probe seeds. ' +
      'Level 0, the dense network, is shared by every series and stands once.',
  );
  assert.deepEqual(header, HEADER);
  const all4 = (cell: string) => [cell, cell, cell, cell].join(' / ');
  const standard = (pct: string) => [
    pct,
    all4('4.25 ± 0.13'),
    '123 ± 7 / 123 ± 7',
    '0.0317 ± 0.0042 / 0.0317 ± 0.0042 / 0.0317 ± 0.0042',
    '1.25 ± 0.31 / 1.25 ± 0.31',
    '0.20 ± 0.10',
    '0.10 ± 0.05',
    all4('1.98 ± 0.06'),
  ];
  assert.deepEqual(rows, [
    [
      '100.0 (dense)',
      '4.25 ± 0.13',
      '123 ± 7',
      '0.0317 ± 0.0042',
      '1.25 ± 0.31',
      '0.20 ± 0.10',
      '0.10 ± 0.05',
      '1.98 ± 0.06',
    ],
    standard('80.0'),
    [
      '51.2',
      all4('4.25 ± 0.13'),
      '1,230 ± 40 / 1,230 ± 40',
      '0.00100 ± 0.00003 / 0.00100 ± 0.00003 / 0.00100 ± 0.00003',
      '1.25 ± 0.31 / 1.25 ± 0.31',
      '0.00 ± 0.00',
      '0.10 ± 0.05',
      all4('1.98 ± 0.06'),
    ],
    [
      '32.8',
      all4('5.50 (±0.21 r)'),
      '123 ± 7 / 123 ± 7',
      '0.0317 ± 0.0042 / 0.0317 ± 0.0042 / 0.0317 ± 0.0042',
      '1.25 ± 0.31 / 1.25 ± 0.31',
      '0.20 ± 0.10',
      '0.40',
      all4('1.98 ± 0.06'),
    ],
    standard('4.4'),
  ]);
});

test('three seeds: the caption names the seeds, those planned, and a value fewer seeds have', () => {
  const result = threeSeeds([threeSeedLevel(0, 100), threeSeedLevel(1, 80)]);
  result.seedsPlanned = [0, 1, 2, 3];
  assert.equal(
    parts(geometryTable(result)).caption,
    'Mean ± std over 3 IMP seeds (0, 1, 2 of the planned 0, 1, 2, 3). ' +
      'Level 0, the dense network, is shared by every series and stands once.',
  );

  // Over two of the three seeds: still mean ± std, and the caption says so.
  const twoOfThree = { ...overSeeds(4.2512, 0.1311), n: 2 };
  const fewer = threeSeeds([threeSeedLevel(0, 100), threeSeedLevel(1, 80, { trace: twoOfThree })]);
  const { caption, rows } = parts(geometryTable(fewer));
  assert.match(
    caption,
    /^Mean ± std over 3 IMP seeds \(0, 1, 2\)\. A value some seed lacks is over the seeds that have it\. Level 0/,
  );
  assert.equal(rows[1]?.[2], '4.25 ± 0.13 / 4.25 ± 0.13');
});

test('a malformed geometry result fails naming the field, not with empty cells', () => {
  const where = (e: unknown, ...fields: RegExp[]) =>
    e instanceof BenchResultError &&
    e.message.startsWith('bench/results/geometry-lenet-mnist.json: ') &&
    e.issues.length === fields.length &&
    fields.every((f, i) => f.test(e.issues[i] as string));

  const wrongType = oneSeed();
  const level = (s: number, l: number) =>
    wrongType.series[s]?.levels[l] as unknown as Record<string, unknown>;
  level(1, 2).trace = { ...(level(1, 2).trace as FixtureValue), std: '0.1' };
  // A key the table shows, absent: another format, not a missing value.
  delete level(3, 0).testError;
  assert.throws(
    () => geometryTable(wrongType),
    (e: unknown) =>
      where(e, /^series\.1\.levels\.2\.trace\.std: .*expected number/, /^series\.3\.levels\.0\.testError: /),
  );

  const noSeeds = oneSeed() as unknown as Record<string, unknown>;
  delete noSeeds.seeds;
  assert.throws(
    () => geometryTable(noSeeds),
    (e: unknown) => where(e, /^seeds: /),
  );

  // Without the replicate design the caption could not say what ± r is over.
  assert.throws(
    () => geometryTable({ ...oneSeed(), spec: { analysis: {} } }),
    (e: unknown) => where(e, /^spec\.analysis\.replicates: /),
  );

  const noTicket = oneSeed();
  noTicket.series = noTicket.series.filter((s) => s.name !== 'ticket');
  assert.throws(
    () => geometryTable(noTicket),
    (e: unknown) => where(e, /^series: has no 'ticket' series/),
  );
});
