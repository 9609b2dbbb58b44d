// `npm run readme:tables`: rewrites every marked result table of README.md and ml/README.md from the bench result
// file it reports (report/readme-tables.ts makes them); `-- --check` changes nothing and exits 1 naming each block
// that differs, so a README edited by hand, or a bench rerun without regenerating, is caught.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import {
  applyBlocks,
  expectedBlocks,
  firstDifference,
  ReadmeBlockError,
  type BlockOutcome,
} from './readme-blocks';
import { GENERATED_FILES, type GeneratedFile } from './readme-tables';

// report/ may not import infra/paths (ARCHITECTURE.md), so the root is found the same way it is found there.
const ROOT = path.resolve(__dirname, '..');

function readJson(source: string): unknown {
  const text = readFileSync(path.join(ROOT, source), 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${source} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

interface FileOutcome {
  file: string;
  markdown: string;
  outcomes: BlockOutcome[];
  stale: BlockOutcome[];
  problems: string[];
}

/** One file's blocks against what its tables make now; `check` adds a line per differing block. */
function examine({ file, tables }: GeneratedFile, check: boolean): FileOutcome {
  const problems: string[] = [];
  const markdown = readFileSync(path.join(ROOT, file), 'utf8');
  let found: ReturnType<typeof expectedBlocks>;
  try {
    found = expectedBlocks(markdown, tables, readJson);
  } catch (e) {
    // A malformed marker: say in which file and where, not a stack, and go on to the other files.
    if (!(e instanceof ReadmeBlockError)) throw e;
    return { file, markdown, outcomes: [], stale: [], problems: [`${file}: ${e.message}`] };
  }
  const { outcomes, unplaced } = found;
  for (const o of outcomes) {
    if (o.error !== undefined) problems.push(`${file}:${o.block.line} table:${o.block.name}: ${o.error}`);
  }
  for (const name of unplaced)
    problems.push(`${file}: table:${name} (${tables[name]?.source}) has no marked block`);
  const stale = outcomes.filter((o) => o.expected !== undefined && o.expected !== o.block.text);
  if (check) {
    for (const o of stale) {
      const d = firstDifference(o.block.text, o.expected as string);
      problems.push(
        `${file}:${o.block.line + d.line} table:${o.block.name} differs from ${tables[o.block.name]?.source}:\n` +
          `  found:    ${d.found}\n  expected: ${d.expected}`,
      );
    }
  }
  return { file, markdown, outcomes, stale, problems };
}

function main(argv: readonly string[]): number {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`usage: npm run readme:tables [-- --check] (unknown: ${unknown.join(' ')})\n`);
    return 2;
  }
  const check = argv.includes('--check');
  const files = GENERATED_FILES.map((f) => examine(f, check));
  const problems = files.flatMap((f) => f.problems);

  // Only when every block of every file could be made: a README half regenerated would look current and not be,
  // and one file rewritten while the other fails would leave the two reporting different runs.
  if (!check && problems.length === 0) {
    for (const f of files)
      if (f.stale.length > 0) writeFileSync(path.join(ROOT, f.file), applyBlocks(f.markdown, f.outcomes));
  }
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) {
    if (check && files.some((f) => f.stale.length > 0))
      process.stderr.write('run `npm run readme:tables` to regenerate them\n');
    return 1;
  }
  for (const f of files) {
    const verb = check
      ? 'up to date'
      : f.stale.length > 0
        ? `rewrote ${f.stale.map((o) => o.block.name).join(', ')}`
        : 'unchanged';
    const n = f.outcomes.length;
    process.stdout.write(`${f.file}: ${n} generated table${n === 1 ? '' : 's'}, ${verb}\n`);
  }
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exitCode = 1;
}
