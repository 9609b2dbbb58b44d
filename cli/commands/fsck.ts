// `lth fsck [--repair] [--json] [--prefix P]`: checks every object of the store against the manifest that lists
// it or its own checksum (store/fsck.ts), prints each problem with what to do, and exits 1 while damage remains.
import type { Command } from 'commander';

import {
  fsck,
  OBJECT_KIND_LABEL,
  type FsckFinding,
  type FsckReport,
  type ObjectKind,
} from '../../store/fsck';
import { endpoints, openStore } from '../../workers/connection';

interface FsckFlags {
  repair?: boolean;
  json?: boolean;
  prefix?: string;
}

function mib(bytes: number): string {
  return `${(bytes / 2 ** 20).toFixed(1)} MiB`;
}

function pad(s: string, n: number): string {
  return s.length >= n ? s : s + ' '.repeat(n - s.length);
}

function findingLines(f: FsckFinding, repair: boolean): string[] {
  const kind = OBJECT_KIND_LABEL[f.kind];
  const lines = [`${pad(f.problem, 9)} ${pad(kind, 17)} ${f.key}`, `          ${f.detail}`];
  if (f.repaired)
    lines.push(`          repaired: removed ${f.remove.join(', ')}; ${f.next.replace(/^.*?; then /, '')}`);
  else if (!(repair && f.remove.length > 0)) lines.push(`          next: ${f.next}`);
  return lines;
}

/** The text report: a header, one block per finding, and the counts. */
export function formatFsckReport(r: FsckReport, repair: boolean): string {
  const where = `s3://${r.bucket}/${r.prefix}`;
  const kept = Object.entries(r.kept)
    .map(([k, n]) => `${n} ${OBJECT_KIND_LABEL[k as ObjectKind]}`)
    .join(', ');
  const out = [
    `fsck ${where}: ${r.objects} objects (${mib(r.bytes)}), ${r.manifests} manifests, ${r.listed} listed objects verified` +
      (kept ? `; unlisted by design and intact: ${kept}` : ''),
  ];
  if (r.findings.length > 0) {
    out.push('', `${pad('PROBLEM', 9)} ${pad('OBJECT', 17)} KEY`);
    for (const f of r.findings) out.push(...findingLines(f, repair));
  }
  const c = r.counts;
  out.push(
    '',
    `${c.corrupt} corrupt, ${c.missing} missing, ${c.orphan} orphan, ${c.unlisted} unlisted (not damage; never removed)` +
      (repair ? `; removed ${r.removed.length} objects` : ''),
  );
  for (const n of r.notes) out.push(`note: ${n}`);
  if (r.clean)
    out.push(
      repair && r.removed.length > 0
        ? 'repaired: the store is clean; run the commands that made what was removed again, with --rerun for finished runs (otherwise attached to as they are), to recompute it'
        : 'clean',
    );
  else
    out.push(
      repair
        ? 'damage remains that fsck does not remove (see next:)'
        : 'damage found: `lth fsck --repair` removes what is marked for it; then run the commands that made it again, with --rerun for finished runs, to recompute it',
    );
  return out.join('\n') + '\n';
}

async function fsckAction(flags: FsckFlags): Promise<void> {
  const store = openStore(endpoints());
  const tty = process.stderr.isTTY;
  let last = 0;
  const report = await fsck(store, {
    ...(flags.prefix !== undefined ? { prefix: flags.prefix } : {}),
    repair: flags.repair === true,
    onProgress: ({ done, total, bytes }) => {
      const now = Date.now();
      if (now - last < (tty ? 250 : 5_000) && done !== total) return;
      last = now;
      const line = `fsck: ${done}/${total} objects verified (${mib(bytes)})`;
      process.stderr.write(tty ? `\r${line}${done === total ? '\n' : ''}` : `${line}\n`);
    },
  });
  process.stdout.write(
    flags.json ? `${JSON.stringify(report, null, 2)}\n` : formatFsckReport(report, flags.repair === true),
  );
  if (!report.clean) process.exitCode = 1;
}

export function registerFsckCommand(program: Command): void {
  program
    .command('fsck')
    .description(
      'verify every stored object against the manifest that lists it (SHA-256 and size) or its own checksum; ' +
        'report corrupt, missing, orphan and unlisted objects; exit 1 while damage remains',
    )
    .option(
      '--repair',
      'remove corrupt derived objects with the manifest that lists them (so the next run of the spec recomputes them), manifests of missing objects, and orphans',
    )
    .option('--json', 'print the report as JSON')
    .option('--prefix <prefix>', 'only objects whose key starts with this (e.g. experiments/<lineage>/)')
    .action(fsckAction);
}
