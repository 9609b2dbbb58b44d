// The import direction of ARCHITECTURE.md, checked: every relative import of every TypeScript file must point into
// a folder its own folder may import, and packages are limited where a layer promises it (ml/ knows nothing of
// Temporal or S3; workflows/ runs in the deterministic sandbox). `npm run lint` runs this; it prints one line per
// violation and exits non-zero.
import fs from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';

/** Top-level folder -> the top-level folders its files may import (itself always). */
export const LAYER_IMPORTS: Record<string, readonly string[]> = {
  ml: [],
  store: ['ml/host-tensor'],
  contract: ['ml', 'store'],
  workflows: ['contract'],
  activities: ['contract', 'ml', 'store'],
  client: ['contract', 'store', 'workflows', 'infra', 'ml'],
  report: ['contract'],
  infra: ['contract', 'ml'],
  workers: ['activities', 'workflows', 'contract', 'ml', 'store', 'infra'],
  cli: ['client', 'report', 'workers', 'workflows', 'activities', 'contract', 'ml', 'store', 'infra'],
  bench: ['client', 'report', 'workers', 'workflows', 'activities', 'contract', 'ml', 'store', 'infra'],
  test: ['*'],
};

/** Packages a layer must not import (a prefix match on the package name). */
export const FORBIDDEN_PACKAGES: Record<string, readonly string[]> = {
  ml: ['@temporalio/', 'minio'],
  store: ['@temporalio/', '@tensorflow/'],
  contract: [
    '@temporalio/activity',
    '@temporalio/client',
    '@temporalio/worker',
    '@temporalio/workflow',
    'minio',
  ],
  workflows: ['@temporalio/activity', '@temporalio/client', '@temporalio/worker', 'minio', '@tensorflow/'],
  activities: ['@temporalio/workflow', '@temporalio/worker'],
};

/** Where a layer's imports may only be type imports (erased at run time). */
export const TYPE_ONLY: Record<string, readonly string[]> = { store: ['ml'] };

export interface Violation {
  file: string;
  line: number;
  spec: string;
  reason: string;
}

const SKIP = new Set(['node_modules', '.git', '.tools', '.data', 'reports']);
const IMPORT_RE =
  /^\s*(import|export)\s+(type\s+)?(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]|\b(?:require|import)\(\s*['"]([^'"]+)['"]\s*\)/gm;

function tsFiles(dir: string, out: string[] = []): string[] {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (SKIP.has(e.name)) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) tsFiles(p, out);
    else if (e.isFile() && e.name.endsWith('.ts')) out.push(p);
  }
  return out;
}

function allowed(layer: string, targetRel: string): boolean {
  const rules = LAYER_IMPORTS[layer];
  if (!rules) return true;
  if (rules.includes('*')) return true;
  const targetLayer = targetRel.split('/')[0] as string;
  if (targetLayer === layer) return true;
  return rules.some((r) => targetRel === r || targetRel.startsWith(`${r}/`) || targetRel.startsWith(`${r}.`));
}

/** Every violation of the rules above in the tree under `root`. */
export function checkLayers(root: string): Violation[] {
  const out: Violation[] = [];
  for (const file of tsFiles(root)) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const layer = rel.split('/')[0] as string;
    if (!rel.includes('/')) continue;
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      const spec = (m[3] ?? m[4]) as string;
      const typeOnly = m[2] !== undefined;
      const line = text.slice(0, m.index).split('\n').length;
      if (spec.startsWith('.')) {
        const target = path
          .relative(root, path.resolve(path.dirname(file), spec))
          .split(path.sep)
          .join('/');
        if (target.startsWith('..')) continue;
        if (!allowed(layer, target)) {
          out.push({
            file: rel,
            line,
            spec,
            reason: `${layer}/ may import only ${[layer, ...(LAYER_IMPORTS[layer] ?? [])].join(', ')}`,
          });
          continue;
        }
        const targetLayer = target.split('/')[0] as string;
        if (targetLayer !== layer && TYPE_ONLY[layer]?.includes(targetLayer) && !typeOnly) {
          out.push({ file: rel, line, spec, reason: `${layer}/ may import only types from ${targetLayer}/` });
        }
      } else {
        const bad = FORBIDDEN_PACKAGES[layer]?.find((p) => spec === p || spec.startsWith(p));
        if (bad !== undefined)
          out.push({ file: rel, line, spec, reason: `${layer}/ must not import ${bad}` });
      }
    }
  }
  return out;
}

/** Packages the workflow sandbox may load: everything workflows/ reaches at run time stays within these. */
export const SANDBOX_PACKAGES = ['zod', '@temporalio/workflow', '@temporalio/common'];

function resolveTs(from: string, spec: string): string | null {
  const base = path.resolve(path.dirname(from), spec.replace(/\.js$/, ''));
  for (const c of [`${base}.ts`, path.join(base, 'index.ts')]) if (fs.existsSync(c)) return c;
  return null;
}

/**
 * What the workflow bundle would load: from every file under workflows/, the closure of value (not type) imports.
 * A Node built-in or a package outside SANDBOX_PACKAGES in it would fail the bundle or break determinism, so it is
 * reported with the chain that reached it.
 */
export function checkSandbox(root: string): Violation[] {
  const out: Violation[] = [];
  const seen = new Map<string, string[]>();
  const queue: [string, string[]][] = tsFiles(path.join(root, 'workflows')).map((f) => [f, []]);
  while (queue.length > 0) {
    const [file, chain] = queue.shift() as [string, string[]];
    if (seen.has(file)) continue;
    const rel = path.relative(root, file).split(path.sep).join('/');
    seen.set(file, chain);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT_RE)) {
      if (m[2] !== undefined || /^\s*import\s+type\b|^\s*export\s+type\b/.test(m[0])) continue;
      const spec = (m[3] ?? m[4]) as string;
      const line = text.slice(0, m.index).split('\n').length;
      if (spec.startsWith('.')) {
        const target = resolveTs(file, spec);
        if (target) queue.push([target, [...chain, rel]]);
        continue;
      }
      const name = spec.startsWith('@')
        ? spec.split('/').slice(0, 2).join('/')
        : (spec.split('/')[0] as string);
      const builtin = spec.startsWith('node:') || builtinModules.includes(name);
      if (builtin || !SANDBOX_PACKAGES.includes(name)) {
        const via = chain.length > 0 ? ` (reached from ${[...chain].reverse().join(' <- ')})` : '';
        out.push({ file: rel, line, spec, reason: `not loadable in the workflow sandbox${via}` });
      }
    }
  }
  return out;
}

if (require.main === module) {
  const root = path.resolve(__dirname, '..');
  const violations = [...checkLayers(root), ...checkSandbox(root)];
  for (const v of violations) process.stderr.write(`${v.file}:${v.line}: '${v.spec}': ${v.reason}\n`);
  if (violations.length > 0) {
    process.stderr.write(`${violations.length} import(s) against the layering of ARCHITECTURE.md\n`);
    process.exit(1);
  }
  process.stdout.write('layers: every import follows ARCHITECTURE.md\n');
}
