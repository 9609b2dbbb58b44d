// `npm run readme:tables`: rewrites every marked result table of README.md from the bench result file it reports
// (report/readme-tables.ts makes them); `-- --check` changes nothing and exits 1 naming each block that differs,
// so a README edited by hand, or a bench rerun without regenerating, is caught.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { applyBlocks, expectedBlocks, firstDifference, ReadmeBlockError } from './readme-blocks';
import { README_TABLES } from './readme-tables';

// report/ may not import infra/paths (ARCHITECTURE.md), so the root is found the same way it is found there.
const ROOT = path.resolve(__dirname, '..');
const README = 'README.md';

function readJson(source: string): unknown {
  const text = readFileSync(path.join(ROOT, source), 'utf8');
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new Error(`${source} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
}

function main(argv: readonly string[]): number {
  const unknown = argv.filter((a) => a !== '--check');
  if (unknown.length > 0) {
    process.stderr.write(`usage: npm run readme:tables [-- --check] (unknown: ${unknown.join(' ')})\n`);
    return 2;
  }
  const check = argv.includes('--check');
  const file = path.join(ROOT, README);
  const markdown = readFileSync(file, 'utf8');
  const { outcomes, unplaced } = expectedBlocks(markdown, README_TABLES, readJson);

  const problems: string[] = [];
  for (const o of outcomes) {
    if (o.error !== undefined) problems.push(`${README}:${o.block.line} table:${o.block.name}: ${o.error}`);
  }
  for (const name of unplaced)
    problems.push(`${README}: table:${name} (${README_TABLES[name]?.source}) has no marked block`);
  const stale = outcomes.filter((o) => o.expected !== undefined && o.expected !== o.block.text);

  if (check) {
    for (const o of stale) {
      const d = firstDifference(o.block.text, o.expected as string);
      problems.push(
        `${README}:${o.block.line + d.line} table:${o.block.name} differs from ${README_TABLES[o.block.name]?.source}:\n` +
          `  found:    ${d.found}\n  expected: ${d.expected}`,
      );
    }
  } else if (problems.length === 0 && stale.length > 0) {
    // Only when every block could be made: a README half regenerated would look current and not be.
    writeFileSync(file, applyBlocks(markdown, outcomes));
  }
  for (const p of problems) process.stderr.write(`${p}\n`);
  if (problems.length > 0) {
    if (check && stale.length > 0) process.stderr.write('run `npm run readme:tables` to regenerate them\n');
    return 1;
  }
  const verb = check
    ? 'up to date'
    : stale.length > 0
      ? `rewrote ${stale.map((o) => o.block.name).join(', ')}`
      : 'unchanged';
  process.stdout.write(`${README}: ${outcomes.length} generated tables, ${verb}\n`);
  return 0;
}

try {
  process.exitCode = main(process.argv.slice(2));
} catch (e) {
  // A malformed marker: say where, not a stack.
  process.stderr.write(
    `${README}: ${e instanceof ReadmeBlockError ? e.message : e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  process.exitCode = 1;
}
