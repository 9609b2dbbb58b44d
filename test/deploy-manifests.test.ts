// The deployment files in infra/deploy/ agree with the code they deploy, checked without Docker, a cluster or any
// service: the setup service registers exactly the search attributes of contract/search-attributes.ts; every
// environment variable given to a worker is one the worker's code reads, and the code's own parsers accept the
// values (endpoints, metrics address, backend); the worker command lines parse with the real `lth worker`
// commands; GPU workers reserve a GPU and CPU ones do not; probes, the metrics Service and the KEDA example
// point at what the workers serve and poll. Schema validity is infra/deploy/validate.sh's job.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { test } from 'node:test';

import type { Command } from 'commander';
import { parse, parseAllDocuments } from 'yaml';
import { z } from 'zod';

import { SEARCH_ATTRIBUTES } from '../contract/search-attributes';
import { COMPUTE_TASK_QUEUE } from '../contract/task-queues';
import { dockerfileProblems } from '../infra/deploy/check-dockerfile';
import { resolveEndpoints } from '../infra/endpoints';
import { backendFromEnv } from '../ml/backend';
import { computeWorkerCommand } from '../workers/compute';
import { lightWorkerCommand } from '../workers/light';
import { metricsBindAddress } from '../workers/metrics';

const ROOT = path.resolve(__dirname, '..');
const DEPLOY = path.join(ROOT, 'infra', 'deploy');
const K8S = path.join(DEPLOY, 'k8s');

/** Every variable a worker must be given to reach the external services (infra/endpoints.ts). */
const REQUIRED_ENV = [
  'TEMPORAL_ADDRESS',
  'TEMPORAL_NAMESPACE',
  'S3_ENDPOINT',
  'S3_ACCESS_KEY',
  'S3_SECRET_KEY',
  'S3_BUCKET',
];

// ------------------------------------------------------------------ what the code reads ---

/** Repo-relative .ts files reachable by relative imports (static and dynamic) from `entry`. */
function importClosure(entry: string): string[] {
  const seen = new Set<string>();
  const resolve = (from: string, spec: string): string | null => {
    const base = path.resolve(path.dirname(from), spec);
    for (const c of [base, base.replace(/\.js$/, '.ts'), `${base}.ts`, path.join(base, 'index.ts')]) {
      if (c.endsWith('.ts') && fs.existsSync(c) && fs.statSync(c).isFile()) return c;
    }
    return null;
  };
  const walk = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(/(?:from|import\(|require\(|require\.resolve\()\s*['"](\.[^'"]+)['"]/g)) {
      const target = resolve(file, m[1] ?? '');
      if (target) walk(target);
    }
  };
  walk(path.join(ROOT, entry));
  return [...seen];
}

/**
 * The LTH_*, TEMPORAL_*, S3_* and TF_* names that occur in the code (comments removed) of everything the
 * image's entrypoint, cli/main.ts, can load: the variables some code there reads.
 */
function envNamesReadByCode(): Set<string> {
  const names = new Set<string>();
  for (const file of importClosure('cli/main.ts')) {
    const code = fs
      .readFileSync(file, 'utf8')
      .replace(/\/\*[\s\S]*?\*\//g, '')
      .replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
    for (const m of code.matchAll(/\b(?:LTH|TEMPORAL|S3|TF)_[A-Z0-9_]+\b/g)) names.add(m[0]);
  }
  return names;
}

const CODE_ENV = envNamesReadByCode();

// ------------------------------------------------------------------ worker command lines ---

/** Parses `worker <role> ...flags` with the real subcommand (its action replaced), as `lth` would. */
async function parseWorkerArgs(
  argv: string[],
): Promise<{ role: 'light' | 'compute'; opts: Record<string, unknown> }> {
  assert.equal(argv[0], 'worker', `not an \`lth worker\` command line: ${argv.join(' ')}`);
  const role = argv[1];
  if (role !== 'light' && role !== 'compute') throw new Error(`unknown worker role in ${argv.join(' ')}`);
  const cmd: Command = role === 'compute' ? computeWorkerCommand() : lightWorkerCommand();
  cmd.exitOverride();
  cmd.configureOutput({ writeErr: () => {}, writeOut: () => {} });
  cmd.action(() => {});
  await cmd.parseAsync(argv.slice(2), { from: 'user' });
  return { role, opts: cmd.opts() };
}

/** What a worker given `env` would do with it, through the code's own parsers; throws what they throw. */
function checkWorkerEnv(where: string, role: 'light' | 'compute', env: Record<string, string>): string {
  for (const name of Object.keys(env)) {
    assert.ok(CODE_ENV.has(name), `${where}: ${name} is given to the worker but no code reads it`);
  }
  for (const name of REQUIRED_ENV) assert.ok(name in env, `${where}: ${name} is missing`);
  const e = resolveEndpoints(env);
  assert.equal(e.embedded, false, `${where}: the endpoints must not claim to be the embedded stack`);
  const bind = metricsBindAddress(role, env);
  assert.ok(bind !== null, `${where}: the worker serves no metrics (${role} worker's port variable unset)`);
  assert.match(
    bind,
    /^0\.0\.0\.0:\d+$/,
    `${where}: metrics must listen on all interfaces to be scraped and probed`,
  );
  if (role === 'compute') {
    const prefer = backendFromEnv(env).prefer;
    assert.ok(
      prefer === 'tensorflow' || prefer === 'tensorflow-gpu',
      `${where}: compute workers must name the native backend (LTH_BACKEND), not fall back silently; got ${prefer}`,
    );
  }
  return bind.slice(bind.lastIndexOf(':') + 1);
}

// ---------------------------------------------------------------------------- compose ---

const envValue = z.union([z.string(), z.number(), z.boolean()]).transform(String);
const composeService = z.object({
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  environment: z.record(z.string(), envValue).optional(),
  env_file: z.array(z.object({ path: z.string(), required: z.boolean().optional() })).optional(),
  profiles: z.array(z.string()).optional(),
  build: z.object({ context: z.string(), dockerfile: z.string(), target: z.string() }).optional(),
  expose: z.array(z.string()).optional(),
  deploy: z
    .object({
      replicas: z.number().int().optional(),
      resources: z
        .object({
          reservations: z
            .object({
              devices: z
                .array(
                  z.object({
                    driver: z.string(),
                    count: z.union([z.number(), z.literal('all')]).optional(),
                    capabilities: z.array(z.string()),
                  }),
                )
                .optional(),
            })
            .optional(),
        })
        .optional(),
    })
    .optional(),
});
type ComposeService = z.infer<typeof composeService>;
const composeFile = z.object({ services: z.record(z.string(), composeService) });

/** `${VAR:-default}` / `${VAR}` as Compose interpolates them, from `vars`, and `$$` as a literal `$`. */
function interpolate(text: string, vars: Record<string, string>): string {
  return text
    .replace(/\$\{([A-Z0-9_]+)(?::-([^}]*))?\}/g, (_, name: string, def: string | undefined) => {
      const v = vars[name];
      if (v !== undefined && v !== '') return v;
      if (def === undefined) throw new Error(`compose.yaml uses \${${name}} without a default`);
      return def;
    })
    .replace(/\$\$/g, '$');
}

function loadCompose(): Record<string, ComposeService> {
  const text = interpolate(fs.readFileSync(path.join(DEPLOY, 'compose.yaml'), 'utf8'), {
    LTH_DEPLOY_SECRETS: './secrets.example',
  });
  const raw: unknown = parse(text, { merge: true });
  return composeFile.parse(raw).services;
}

/** KEY=VALUE lines of an env file (comments and blank lines skipped). */
function readEnvFile(file: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of fs.readFileSync(file, 'utf8').split('\n')) {
    const m = /^\s*([A-Za-z_][A-Za-z0-9_]*)=(.*)$/.exec(line);
    if (m?.[1]) out[m[1]] = m[2] ?? '';
  }
  return out;
}

/** A compose service's full environment: its env files (the committed examples), then `environment`. */
function composeEnv(s: ComposeService): Record<string, string> {
  const env: Record<string, string> = {};
  for (const f of s.env_file ?? []) Object.assign(env, readEnvFile(path.resolve(DEPLOY, f.path)));
  return { ...env, ...(s.environment ?? {}) };
}

const CLI_TYPES: Record<string, string> = {
  TEXT: 'Text',
  KEYWORD: 'Keyword',
  INT: 'Int',
  DOUBLE: 'Double',
  BOOL: 'Bool',
  DATETIME: 'Datetime',
  KEYWORD_LIST: 'KeywordList',
};

test('compose: the setup service creates exactly the search attributes of contract/search-attributes.ts', () => {
  const setup = loadCompose().setup;
  assert.ok(setup, 'compose.yaml has no setup service');
  const listed = (setup.environment?.LTH_SEARCH_ATTRIBUTES ?? '').split(/\s+/).filter(Boolean);
  const want = SEARCH_ATTRIBUTES.map((k) => `${k.name}=${CLI_TYPES[k.type] ?? k.type}`);
  assert.deepEqual([...listed].sort(), [...want].sort());
});

test('compose: workers get only variables the code reads, and the code accepts their values', async () => {
  const services = loadCompose();
  const setupEnv = composeEnv(services.setup ?? {});
  const workers = Object.entries(services).filter(([, s]) => s.command?.[0] === 'worker');
  assert.deepEqual(workers.map(([n]) => n).sort(), ['compute-worker', 'compute-worker-gpu', 'light-worker']);
  for (const [name, s] of workers) {
    const { role } = await parseWorkerArgs(s.command ?? []);
    const env = composeEnv(s);
    const port = checkWorkerEnv(`compose.yaml services.${name}`, role, env);
    assert.ok(s.expose?.includes(port), `services.${name}: metrics port ${port} is not exposed`);
    // The setup service prepares the namespace and bucket the workers use.
    for (const k of ['TEMPORAL_ADDRESS', 'TEMPORAL_NAMESPACE', 'S3_ENDPOINT', 'S3_BUCKET']) {
      assert.equal(env[k], setupEnv[k], `services.${name}: ${k} differs from the setup service's`);
    }
    // Credentials only from env files, never written into compose.yaml.
    assert.ok(!('S3_SECRET_KEY' in (s.environment ?? {})), `services.${name}: S3_SECRET_KEY inline`);
  }
});

test('compose: the GPU worker reserves an NVIDIA GPU and runs the gpu image; the CPU workers do not', () => {
  const services = loadCompose();
  const gpu = services['compute-worker-gpu'];
  const cpu = services['compute-worker'];
  assert.ok(gpu && cpu);
  const devices = gpu.deploy?.resources?.reservations?.devices ?? [];
  assert.ok(
    devices.some((d) => d.driver === 'nvidia' && d.capabilities.includes('gpu')),
    'compute-worker-gpu has no nvidia gpu reservation',
  );
  assert.equal(gpu.build?.target, 'gpu');
  assert.equal(gpu.environment?.LTH_BACKEND, 'tensorflow-gpu');
  assert.deepEqual(gpu.profiles, ['gpu'], 'the GPU worker must stay out of a plain `up` on a GPU-less host');
  assert.equal(cpu.deploy?.resources?.reservations?.devices, undefined);
  assert.equal(cpu.build?.target, 'cpu');
  assert.ok((cpu.deploy?.replicas ?? 0) >= 1, 'compute-worker has no deploy.replicas');
});

test('compose: every third-party image is pinned to a version', () => {
  for (const [name, s] of Object.entries(loadCompose())) {
    if (!s.image || s.build) continue;
    const tag = /:([^/:]+)$/.exec(s.image)?.[1];
    assert.ok(tag && tag !== 'latest' && /\d/.test(tag), `services.${name}: image ${s.image} is not pinned`);
  }
});

// ------------------------------------------------------------------------- kubernetes ---

const envVar = z.object({ name: z.string(), value: z.string().optional() });
const probe = z.object({ httpGet: z.object({ path: z.string(), port: z.union([z.string(), z.number()]) }) });
const container = z.object({
  name: z.string(),
  image: z.string(),
  args: z.array(z.string()),
  env: z.array(envVar).default([]),
  envFrom: z
    .array(
      z.object({
        configMapRef: z.object({ name: z.string() }).optional(),
        secretRef: z.object({ name: z.string() }).optional(),
      }),
    )
    .default([]),
  ports: z.array(z.object({ name: z.string().optional(), containerPort: z.number() })).default([]),
  readinessProbe: probe.optional(),
  livenessProbe: probe.optional(),
  resources: z
    .object({ limits: z.record(z.string(), z.union([z.string(), z.number()])).optional() })
    .optional(),
});
const manifest = z.object({
  apiVersion: z.string(),
  kind: z.string(),
  metadata: z.object({ name: z.string(), namespace: z.string().optional() }),
  data: z.record(z.string(), z.string()).optional(),
  stringData: z.record(z.string(), z.string()).optional(),
  spec: z
    .object({
      selector: z
        .union([
          z.record(z.string(), z.string()),
          z.object({ matchLabels: z.record(z.string(), z.string()) }),
        ])
        .optional(),
      ports: z
        .array(
          z.object({
            name: z.string().optional(),
            port: z.number(),
            targetPort: z.union([z.string(), z.number()]).optional(),
          }),
        )
        .optional(),
      template: z
        .object({
          metadata: z.object({ labels: z.record(z.string(), z.string()) }),
          spec: z.object({ containers: z.array(container) }),
        })
        .optional(),
    })
    .optional(),
});
type Manifest = z.infer<typeof manifest>;

function loadK8s(): Manifest[] {
  const out: Manifest[] = [];
  for (const f of fs.readdirSync(K8S).filter((n) => n.endsWith('.yaml') && n !== 'kustomization.yaml')) {
    for (const doc of parseAllDocuments(fs.readFileSync(path.join(K8S, f), 'utf8'))) {
      const raw: unknown = doc.toJS();
      if (raw !== null && raw !== undefined) out.push(manifest.parse(raw));
    }
  }
  return out;
}

function byKind(all: Manifest[], kind: string, name: string): Manifest {
  const m = all.find((x) => x.kind === kind && x.metadata.name === name);
  assert.ok(m, `no ${kind} ${name} in infra/deploy/k8s`);
  return m;
}

const DEPLOYMENTS = ['lth-light-worker', 'lth-compute-worker', 'lth-compute-worker-gpu'];

test('k8s: workers get only variables the code reads, the code accepts them, probes hit the metrics port', async () => {
  const all = loadK8s();
  for (const name of DEPLOYMENTS) {
    const d = byKind(all, 'Deployment', name);
    const c = d.spec?.template?.spec.containers[0];
    assert.ok(c, `${name}: no container`);
    const env: Record<string, string> = {};
    for (const from of c.envFrom) {
      if (from.configMapRef) Object.assign(env, byKind(all, 'ConfigMap', from.configMapRef.name).data);
      if (from.secretRef) Object.assign(env, byKind(all, 'Secret', from.secretRef.name).stringData);
    }
    for (const v of c.env) env[v.name] = v.value ?? '';
    const { role } = await parseWorkerArgs(c.args);
    const port = checkWorkerEnv(`k8s Deployment ${name}`, role, env);
    const metricsPort = c.ports.find((p) => p.name === 'metrics');
    assert.equal(
      String(metricsPort?.containerPort),
      port,
      `${name}: containerPort 'metrics' is not the served port`,
    );
    for (const p of [c.readinessProbe, c.livenessProbe]) {
      assert.ok(p, `${name}: readiness and liveness probes are required`);
      assert.ok(
        p.httpGet.port === 'metrics' || String(p.httpGet.port) === port,
        `${name}: probe not on metrics`,
      );
    }
  }
});

test('k8s: only the GPU Deployment asks for a GPU, and it runs the gpu image on the native GPU backend', () => {
  const all = loadK8s();
  const limits = (name: string) =>
    byKind(all, 'Deployment', name).spec?.template?.spec.containers[0]?.resources?.limits ?? {};
  assert.equal(String(limits('lth-compute-worker-gpu')['nvidia.com/gpu']), '1');
  assert.equal(limits('lth-compute-worker')['nvidia.com/gpu'], undefined);
  assert.equal(limits('lth-light-worker')['nvidia.com/gpu'], undefined);
  const gpu = byKind(all, 'Deployment', 'lth-compute-worker-gpu').spec?.template?.spec.containers[0];
  assert.match(gpu?.image ?? '', /-gpu$/);
  assert.equal(gpu?.env.find((v) => v.name === 'LTH_BACKEND')?.value, 'tensorflow-gpu');
});

test('k8s: the metrics Service selects every worker pod on its metrics port', () => {
  const all = loadK8s();
  const svc = byKind(all, 'Service', 'lth-worker-metrics');
  const sel = svc.spec?.selector;
  assert.ok(sel && !('matchLabels' in sel), 'Service needs a plain label selector');
  assert.equal(svc.spec?.ports?.[0]?.targetPort, 'metrics');
  for (const name of DEPLOYMENTS) {
    const labels = byKind(all, 'Deployment', name).spec?.template?.metadata.labels ?? {};
    for (const [k, v] of Object.entries(sel as Record<string, string>)) {
      assert.equal(labels[k], v, `Service lth-worker-metrics does not select ${name}'s pods (${k})`);
    }
  }
});

test('k8s: the KEDA example scales the compute Deployment on the compute task queue of the configured namespace', () => {
  const text = fs.readFileSync(path.join(K8S, 'keda-scaledobject.example.yaml'), 'utf8');
  const lines = text.split('\n');
  const start = lines.findIndex((l) => l.startsWith('# apiVersion:'));
  assert.ok(start >= 0, 'the example has no commented ScaledObject');
  const yamlText = lines
    .slice(start)
    .map((l) => l.replace(/^# ?/, ''))
    .join('\n');
  const so = z
    .object({
      kind: z.literal('ScaledObject'),
      metadata: z.object({ namespace: z.string() }),
      spec: z.object({
        scaleTargetRef: z.object({ name: z.string() }),
        triggers: z.array(z.object({ type: z.string(), metadata: z.record(z.string(), z.string()) })),
      }),
    })
    .parse(parse(yamlText) as unknown);
  const all = loadK8s();
  const compute = byKind(all, 'Deployment', so.spec.scaleTargetRef.name);
  assert.equal(compute.metadata.name, 'lth-compute-worker');
  assert.equal(so.metadata.namespace, compute.metadata.namespace);
  const endpoints = byKind(all, 'ConfigMap', 'lth-endpoints').data ?? {};
  const trigger = so.spec.triggers.find((t) => t.type === 'temporal');
  assert.ok(trigger, 'no temporal trigger');
  assert.equal(trigger.metadata.taskQueue, COMPUTE_TASK_QUEUE);
  assert.equal(trigger.metadata.queueTypes, 'activity');
  assert.equal(trigger.metadata.namespace, endpoints.TEMPORAL_NAMESPACE);
  assert.equal(trigger.metadata.endpoint, endpoints.TEMPORAL_ADDRESS);
});

// ------------------------------------------------------------------------- Dockerfile ---

test('Dockerfile: the static checks pass, and they catch a missing COPY source and an unknown provision step', () => {
  assert.deepEqual(dockerfileProblems(), []);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-dockerfile-'));
  try {
    const broken = path.join(dir, 'Dockerfile');
    fs.writeFileSync(
      broken,
      [
        'FROM node:20.20.2-bookworm AS build',
        'RUN bash infra/provision.sh npm nativ',
        'COPY no-such-folder/ x/',
        'FROM node:latest AS cpu',
        'ENTRYPOINT node cli/main.ts',
        '',
      ].join('\n'),
    );
    const problems = dockerfileProblems(broken).join('\n');
    assert.match(problems, /:2: RUN: infra\/provision\.sh has no step 'nativ'/);
    assert.match(problems, /:3: COPY: source no-such-folder\/ does not exist/);
    assert.match(problems, /:4: FROM: base image node:latest is not pinned/);
    assert.match(problems, /:5: ENTRYPOINT: must be the JSON \(exec\) form/);
    assert.match(problems, /no stage 'gpu'/);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
