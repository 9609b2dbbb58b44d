/**
 * Cheap static checks of infra/deploy/Dockerfile, for a machine without Docker or a Dockerfile linter: what a
 * build would only find out after minutes of downloads. Problems are returned (or printed, run as a script)
 * one line each, naming the Dockerfile line.
 *
 *   node --import tsx infra/deploy/check-dockerfile.ts
 *
 * Checks: every base image is pinned to a version tag; every `COPY --from` names an earlier stage; every other
 * COPY source exists in the repository and is not excluded by Dockerfile.dockerignore; the steps given to
 * infra/provision.sh and the options given to infra/tfjs-native.sh are ones those scripts accept; the targets
 * compose.yaml builds exist and `cpu` is the default (last) stage; the ENTRYPOINT's script is copied into it.
 */
import fs from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(__dirname, '..', '..');
export const DOCKERFILE = path.join(ROOT, 'infra', 'deploy', 'Dockerfile');

interface Instruction {
  line: number;
  op: string;
  args: string;
}

/** Instructions with continuation lines joined and comments dropped. */
export function parseDockerfile(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending: Instruction | null = null;
  text.split('\n').forEach((raw, i) => {
    const line = raw.trimEnd();
    if (pending === null) {
      if (/^\s*(#|$)/.test(line)) return;
      const m = /^\s*([A-Za-z]+)\s*(.*)$/.exec(line);
      if (!m) return;
      pending = { line: i + 1, op: (m[1] ?? '').toUpperCase(), args: '' };
      const rest = m[2] ?? '';
      pending.args = rest.replace(/\\$/, '');
      if (!rest.endsWith('\\')) {
        out.push(pending);
        pending = null;
      }
    } else {
      // Comment lines inside a continuation are skipped by Docker too.
      if (/^\s*#/.test(line)) return;
      pending.args += ' ' + line.trim().replace(/\\$/, '');
      if (!line.endsWith('\\')) {
        out.push(pending);
        pending = null;
      }
    }
  });
  if (pending !== null) out.push(pending);
  return out;
}

/** The steps infra/provision.sh accepts, from its `case` over the step names. */
function provisionSteps(): Set<string> {
  const text = fs.readFileSync(path.join(ROOT, 'infra', 'provision.sh'), 'utf8');
  const m = /known: ([a-z ]+)\)/.exec(text);
  return new Set((m?.[1] ?? '').split(' ').filter(Boolean));
}

/** The options infra/tfjs-native.sh accepts, from its argument loop. */
function tfjsNativeOptions(): Set<string> {
  const text = fs.readFileSync(path.join(ROOT, 'infra', 'tfjs-native.sh'), 'utf8');
  return new Set([...text.matchAll(/^\s*(--[a-z-]+)(?: \| -[a-z])?\)/gm)].map((m) => m[1] ?? ''));
}

/** Patterns of the Dockerfile-specific ignore file (plain paths and folders; no negations are used there). */
function ignoredPaths(dockerfile: string): string[] {
  const file = `${dockerfile}.dockerignore`;
  if (!fs.existsSync(file)) return [];
  return fs
    .readFileSync(file, 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
}

function isIgnored(src: string, patterns: string[]): string | null {
  const s = src.replace(/\/+$/, '');
  for (const p of patterns) {
    if (p.includes('*')) {
      const re = new RegExp('^' + p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[^/]*') + '$');
      if (re.test(s) || re.test(path.basename(s))) return p;
    } else if (s === p || s.startsWith(p + '/')) {
      return p;
    }
  }
  return null;
}

export function dockerfileProblems(file: string = DOCKERFILE): string[] {
  const problems: string[] = [];
  const rel = path.relative(ROOT, file);
  const at = (ins: Instruction, msg: string) => problems.push(`${rel}:${ins.line}: ${ins.op}: ${msg}`);
  const instructions = parseDockerfile(fs.readFileSync(file, 'utf8'));
  const args = new Map<string, string>();
  const stages: string[] = [];
  const ignore = ignoredPaths(file);
  const steps = provisionSteps();
  const nativeOptions = tfjsNativeOptions();
  // Per stage: what COPY put where, to find the ENTRYPOINT's script in the stage that runs it.
  const copiedInto = new Map<string, string[]>();
  let current = '';
  let entrypoint: { ins: Instruction; stage: string; argv: string[] } | null = null;

  for (const ins of instructions) {
    if (ins.op === 'ARG') {
      const m = /^([A-Za-z_][A-Za-z0-9_]*)(?:=(\S+))?/.exec(ins.args);
      if (m?.[1] && m[2] !== undefined) args.set(m[1], m[2]);
    } else if (ins.op === 'FROM') {
      const m = /^(\S+)(?:\s+AS\s+(\S+))?$/i.exec(ins.args.trim());
      if (!m?.[1]) {
        at(ins, `cannot parse '${ins.args}'`);
        continue;
      }
      const image = m[1].replace(
        /^\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?$/,
        (_, v: string) => args.get(v) ?? `$${v}`,
      );
      if (!stages.includes(image)) {
        // A registry image: it must carry a version, so the build is repeatable.
        const tag = /:([^/:]+)$/.exec(image)?.[1];
        if (image.startsWith('$')) at(ins, `${m[1]} has no default value`);
        else if (!tag || tag === 'latest' || !/\d/.test(tag))
          at(ins, `base image ${image} is not pinned to a version`);
      }
      current = m[2] ?? `#${stages.length}`;
      stages.push(current);
      copiedInto.set(current, [...(stages.includes(image) ? (copiedInto.get(image) ?? []) : [])]);
    } else if (ins.op === 'COPY') {
      const words = ins.args.split(/\s+/).filter(Boolean);
      const flags = words.filter((w) => w.startsWith('--'));
      const paths = words.filter((w) => !w.startsWith('--'));
      const dest = paths.pop();
      if (!dest || paths.length === 0) {
        at(ins, 'needs a source and a destination');
        continue;
      }
      copiedInto.get(current)?.push(...paths.map((p) => p.replace(/\/+$/, '')));
      const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
      if (from !== undefined) {
        if (!stages.slice(0, -1).includes(from)) at(ins, `--from=${from} is not an earlier stage`);
        continue;
      }
      for (const src of paths) {
        if (!fs.existsSync(path.join(ROOT, src))) at(ins, `source ${src} does not exist in the repository`);
        const by = isIgnored(src, ignore);
        if (by !== null) at(ins, `source ${src} is excluded by Dockerfile.dockerignore (${by})`);
      }
    } else if (ins.op === 'RUN') {
      for (const m of ins.args.matchAll(/bash infra\/provision\.sh((?:\s+[a-z]+)*)/g)) {
        for (const step of (m[1] ?? '').split(/\s+/).filter(Boolean)) {
          if (!steps.has(step))
            at(ins, `infra/provision.sh has no step '${step}' (known: ${[...steps].join(' ')})`);
        }
      }
      for (const m of ins.args.matchAll(/bash infra\/tfjs-native\.sh((?:\s+--[a-z-]+)*)/g)) {
        for (const opt of (m[1] ?? '').split(/\s+/).filter(Boolean)) {
          if (!nativeOptions.has(opt)) at(ins, `infra/tfjs-native.sh has no option ${opt}`);
        }
      }
    } else if (ins.op === 'ENTRYPOINT') {
      try {
        const argv: unknown = JSON.parse(ins.args);
        if (!Array.isArray(argv) || !argv.every((a): a is string => typeof a === 'string')) throw new Error();
        entrypoint = { ins, stage: current, argv };
      } catch {
        // The shell form would run the worker under /bin/sh, which does not pass SIGTERM on to it.
        at(ins, 'must be the JSON (exec) form');
      }
    }
  }

  for (const target of ['cpu', 'gpu']) {
    if (!stages.includes(target)) problems.push(`${rel}: no stage '${target}' (compose.yaml builds it)`);
  }
  if (stages.at(-1) !== 'cpu')
    problems.push(`${rel}: the last (default) stage is '${stages.at(-1)}', not 'cpu'`);
  if (entrypoint === null) {
    problems.push(`${rel}: no ENTRYPOINT`);
  } else {
    const scripts = entrypoint.argv.filter((a) => /\.(ts|js|cjs|mjs)$/.test(a));
    if (scripts.length === 0) at(entrypoint.ins, 'runs no script');
    for (const s of scripts) {
      if (!fs.existsSync(path.join(ROOT, s))) at(entrypoint.ins, `${s} does not exist in the repository`);
      for (const target of ['cpu', 'gpu']) {
        const copied = copiedInto.get(target) ?? [];
        if (!copied.some((c) => s === c || s.startsWith(c + '/'))) {
          at(entrypoint.ins, `${s} is not copied into stage '${target}'`);
        }
      }
    }
  }
  return problems;
}

if (require.main === module) {
  const problems = dockerfileProblems();
  for (const p of problems) process.stderr.write(`check-dockerfile: ${p}\n`);
  if (problems.length > 0) process.exit(1);
  process.stdout.write(`check-dockerfile: ${path.relative(ROOT, DOCKERFILE)} ok\n`);
}
