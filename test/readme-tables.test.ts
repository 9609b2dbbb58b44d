// The READMEs' result tables are the bench results': every marked block of README.md and ml/README.md equals what
// report/readme-tables.ts makes from the committed bench/results/*.json (so neither a hand edit nor a bench rerun
// without `npm run readme:tables` goes unnoticed), a malformed result names its field, and a bold best lands on its
// own cell.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { REPO_ROOT } from '../infra/paths';
import { BenchResultError } from '../report/bench-results';
import { displayWidth } from '../report/markdown-table';
import { applyBlocks, expectedBlocks, findBlocks, ReadmeBlockError } from '../report/readme-blocks';
import {
  GENERATED_FILES,
  README_TABLES,
  distillTable,
  impTable,
  peerTable,
  profileTable,
  scaleoutTable,
} from '../report/readme-tables';

const readJson = (source: string): unknown => JSON.parse(readFileSync(path.join(REPO_ROOT, source), 'utf8'));
const read = (file: string) => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const readme = () => read('README.md');

/** A Markdown table's body rows as trimmed cells (header and delimiter dropped). */
function bodyCells(table: string): string[][] {
  return table
    .trimEnd()
    .split('\n')
    .slice(2)
    .map((line) =>
      line
        .slice(1, -1)
        .split(' | ')
        .map((c) => c.trim()),
    );
}

test('both READMEs have generated tables: README.md and ml/README.md', () => {
  assert.deepEqual(
    GENERATED_FILES.map((f) => f.file),
    ['README.md', 'ml/README.md'],
  );
});

for (const { file, tables } of GENERATED_FILES) {
  test(`every generated table of ${file} is what its bench result file makes`, () => {
    const { outcomes, unplaced } = expectedBlocks(read(file), tables, readJson);
    assert.deepEqual(unplaced, [], `every table has a marked block in ${file}`);
    assert.deepEqual(outcomes.map((o) => o.block.name).sort(), Object.keys(tables).sort());
    for (const o of outcomes) {
      assert.equal(o.error, undefined, `${file} table:${o.block.name}: ${o.error}`);
      assert.equal(
        o.block.text,
        o.expected,
        `${file}:${o.block.line} table:${o.block.name} differs: run npm run readme:tables`,
      );
    }
  });
}

test('generated tables are aligned as prettier aligns them: every line of a table equally wide', () => {
  for (const { file, tables } of GENERATED_FILES) {
    for (const [name, t] of Object.entries(tables)) {
      // Only the table's lines: a block may hold a caption line too (the geometry table's says what ± is over).
      const lines = t
        .render(readJson(t.source))
        .trimEnd()
        .split('\n')
        .filter((l) => l.startsWith('|'));
      const widths = new Set(lines.map(displayWidth));
      assert.equal(widths.size, 1, `${file} table:${name} has lines of widths ${[...widths].join(', ')}`);
    }
  }
});

test('the geometry section holds no generated table but its own (table:geometry, once its result is rerun)', () => {
  // Its prose is edited by hand; report/readme-tables.ts's geometryTable may fill one block there.
  const text = readme();
  const geometry = text.indexOf('## Geometry of the solutions');
  const next = text.indexOf('\n## ', geometry + 1);
  assert.ok(geometry > 0 && next > geometry);
  for (const b of findBlocks(text))
    assert.ok(b.name === 'geometry' || b.end < geometry || b.start > next, `table:${b.name}`);
});

test('a malformed result file fails naming the field, not with a table of NaN', () => {
  const distill = readJson('bench/results/distill.json') as { runs: { testAccuracy: { mean: unknown } }[] };
  (distill.runs[2] as { testAccuracy: { mean: unknown } }).testAccuracy.mean = '82.1';
  assert.throws(
    () => distillTable(distill),
    (e: unknown) =>
      e instanceof BenchResultError &&
      e.issues.length === 1 &&
      /^runs\.2\.testAccuracy\.mean: .*expected number/.test(e.issues[0] as string) &&
      e.message.includes('bench/results/distill.json'),
  );

  const peer = readJson('bench/results/peer.json') as { results: Record<string, unknown>[] };
  delete (peer.results[4] as Record<string, unknown>).invocation;
  assert.throws(() => peerTable(peer), /results\.4\.invocation: /);

  assert.throws(() => scaleoutTable({ runs: 'none' }), /runs: .*expected array/);
  assert.throws(() => scaleoutTable(null), /\(root\): /);

  // A level the README shows but the file lacks is named too.
  const imp = readJson('bench/results/imp-lenet-mnist.json') as { levels: { level: number }[] };
  imp.levels = imp.levels.filter((l) => l.level !== 7);
  assert.throws(() => impTable(imp), /levels: has no level 7/);
});

test('the distill table bolds the best mean of each column, in that column and that row only', () => {
  const run = (dataset: string, trainFraction: number, variant: string, mean: number) => ({
    dataset,
    trainFraction,
    variant,
    epochs: trainFraction === 1 ? 1 : 12,
    testAccuracy: { mean, std: 0.01, n: 3 },
  });
  const table = distillTable({
    runs: [
      run('mnist', 1, 'student', 0.9),
      run('mnist', 1, 'cnn', 0.91),
      run('mnist', 1, 'both-average', 0.89),
      run('mnist', 0.1, 'student', 0.8),
      run('mnist', 0.1, 'cnn', 0.79),
      run('mnist', 0.1, 'both-average', 0.805),
      run('fashion-mnist', 0.1, 'student', 0.7),
      run('fashion-mnist', 0.1, 'cnn', 0.7),
      run('fashion-mnist', 0.1, 'both-average', 0.69),
    ],
  });
  const header = table.split('\n')[0] as string;
  assert.match(header, /\| variant +\| F-MNIST 10%, 12 ep \| MNIST 10%, 12 ep \| MNIST full, 1 ep \|/);
  assert.deepEqual(bodyCells(table), [
    // A tie is bolded in every row that holds it.
    ['student (no KD)', '**70.00 ± 1.00**', '80.00 ± 1.00', '90.00 ± 1.00'],
    ['cnn (one token)', '**70.00 ± 1.00**', '79.00 ± 1.00', '**91.00 ± 1.00**'],
    ['both-average (one token, mean target)', '69.00 ± 1.00', '**80.50 ± 1.00**', '89.00 ± 1.00'],
  ]);
});

test('a stale block is found and rewritten, the text around it kept byte for byte', () => {
  const text = readme();
  const block = findBlocks(text).find((b) => b.name === 'scaleout');
  assert.ok(block);
  const stale = text.slice(0, block.start) + block.text.replace('42.2', '41.0') + text.slice(block.end);
  const { outcomes } = expectedBlocks(stale, README_TABLES, readJson);
  const differing = outcomes.filter((o) => o.expected !== o.block.text).map((o) => o.block.name);
  assert.deepEqual(differing, ['scaleout']);
  assert.equal(applyBlocks(stale, outcomes), text);
});

test('markers without their partner, repeated or unknown are refused with their line', () => {
  const open =
    '<!-- table:imp generated by npm run readme:tables from bench/results/imp-lenet-mnist.json -->';
  assert.throws(() => findBlocks(`a\n${open}\n| x |\n`), /line 2: table:imp is never closed/);
  assert.throws(() => findBlocks(`<!-- /table:imp -->\n`), /line 1: \/table:imp closes no open/);
  assert.throws(
    () => findBlocks(`${open}\n<!-- /table:imp -->\n${open}\n<!-- /table:imp -->\n`),
    (e: unknown) => e instanceof ReadmeBlockError && /line 3: table:imp appears twice/.test(e.message),
  );
  const { outcomes } = expectedBlocks('<!-- table:nope -->\n<!-- /table:nope -->\n', README_TABLES, readJson);
  assert.match(outcomes[0]?.error ?? '', /no generator is named 'nope'/);
});

test('ml/README.md\'s profile table stands in its section "Where a training step\'s time goes"', () => {
  const text = read('ml/README.md');
  const section = text.indexOf("## Where a training step's time goes");
  const next = text.indexOf('\n## ', section + 1);
  const block = findBlocks(text).find((b) => b.name === 'profile');
  assert.ok(section > 0 && block);
  assert.ok(block.start > section && (next < 0 || block.end < next));
});

test('the profile table: graph step absent as -, a negative outside share in parentheses, the top three kernels', () => {
  const model = (name: string, over: Record<string, unknown>) => ({
    model: name,
    wallMs: 123.456,
    graphWallMs: 9.96,
    kernels: 1250,
    outermostKernels: 892,
    kernelMs: 8.04,
    outsideShare: 0.0932,
    tensorsAllocated: 1507,
    topKernels: [
      { name: 'Add', count: 133, nested: 16, ms: 25.419 },
      // Not a kernel: tfjs's name for a custom-gradient op, passed over.
      { name: 'unnamed scope', count: 14, nested: 0, ms: 300 },
      { name: 'Conv2DBackpropInput', count: 1, nested: 0, ms: 132.947 },
      { name: 'MaxPoolGrad', count: 2, nested: 0, ms: 0.04 },
      { name: 'Relu', count: 2, nested: 0, ms: 0.01 },
    ],
    ...over,
  });
  const table = profileTable({
    models: [model('conv-2', {}), model('vit-tiny', { graphWallMs: null, outsideShare: -0.14693 })],
  });
  assert.deepEqual(bodyCells(table), [
    [
      'conv-2',
      '123',
      '10',
      '1,250 (892)',
      '8.0 ms',
      '9%',
      '1,507',
      'Conv2DBackpropInput 133, Add ×133 25, MaxPoolGrad ×2 0.0',
    ],
    [
      'vit-tiny',
      '123',
      '-',
      '1,250 (892)',
      '8.0 ms',
      '(\u221215%)',
      '1,507',
      'Conv2DBackpropInput 133, Add ×133 25, MaxPoolGrad ×2 0.0',
    ],
  ]);
});

test('a malformed profile result fails naming the field', () => {
  const profile = readJson('bench/results/profile-tensorflow.json') as { models: Record<string, unknown>[] };
  (profile.models[1] as Record<string, unknown>).graphWallMs = undefined;
  // ms left out: a kernel with no time.
  delete (profile.models[3] as { topKernels: { ms?: unknown }[] }).topKernels[0]?.ms;
  assert.throws(
    () => profileTable(profile),
    (e: unknown) =>
      e instanceof BenchResultError &&
      e.message.includes('bench/results/profile-tensorflow.json') &&
      e.issues.length === 2 &&
      /^models\.1\.graphWallMs: /.test(e.issues[0] as string) &&
      /^models\.3\.topKernels\.0\.ms: .*expected number/.test(e.issues[1] as string),
  );
});
