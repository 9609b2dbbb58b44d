// `lth up`, `lth down`, `lth status` (without an experiment): the embedded Temporal + MinIO stack
// (infra/embedded-stack.ts), or, when TEMPORAL_ADDRESS / S3_ENDPOINT name external services, a reachability check.
import { Command, InvalidArgumentError, Option } from 'commander';

import { clusterOptionsFromEnv, type ClusterOptions } from '../../infra/cluster-options';
import { clusterDown, clusterStatus, clusterUp } from '../../infra/cluster-stack';
import { stackDown, stackStatus, stackUp, type ServiceStatus } from '../../infra/embedded-stack';
import {
  checkEndpoints,
  resolveEndpoints,
  stackOptionsFromEnv,
  type StackEndpoints,
  type StackOptions,
} from '../../infra/endpoints';

export interface StackFlags {
  profile?: 'embedded' | 'cluster';
  workers?: number;
  drives?: number;
  home?: string;
  temporalPort?: number;
  uiPort?: number;
  minioPort?: number;
  consolePort?: number;
  tls?: boolean;
}

function parsePort(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > 65535)
    throw new InvalidArgumentError('expected a port number 1-65535');
  return n;
}

function parseCount(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number');
  return n;
}

export function withStackFlags(cmd: Command): Command {
  return cmd
    .addOption(
      new Option(
        '--profile <name>',
        'embedded: the dev server + one-drive MinIO; cluster: Temporal server on PostgreSQL, UI server, ' +
          'erasure-coded MinIO and workers (built by `bash infra/provision.sh cluster`)',
      )
        .choices(['embedded', 'cluster'])
        .env('LTH_PROFILE'),
    )
    .option(
      '--workers <n>',
      'cluster: compute worker processes (env LTH_CLUSTER_WORKERS, default 2)',
      parseCount,
    )
    .option(
      '--drives <n>',
      'cluster: MinIO drive folders, 4-16 (env LTH_CLUSTER_DRIVES, default 4)',
      parseCount,
    )
    .option(
      '--home <dir>',
      'stack folder (env LTH_HOME, default .data/stack; cluster: LTH_CLUSTER_HOME, .data/cluster)',
    )
    .option('--temporal-port <port>', 'Temporal gRPC port (env LTH_TEMPORAL_PORT, default 7233)', parsePort)
    .option('--ui-port <port>', 'Temporal UI port (env LTH_UI_PORT, default 8233)', parsePort)
    .option('--minio-port <port>', 'MinIO S3 port (env LTH_MINIO_PORT, default 9000)', parsePort)
    .option('--console-port <port>', 'MinIO console port (env LTH_CONSOLE_PORT, default 9001)', parsePort)
    .option(
      '--tls',
      'MinIO over https and Temporal with mTLS (embedded: a TLS front; cluster: the server itself), from a CA ' +
        'made in <home>/tls (env LTH_TLS=1; every other command needs LTH_TLS=1 too)',
    );
}

function clusterOptions(f: StackFlags): ClusterOptions {
  return clusterOptionsFromEnv(process.env, {
    home: f.home,
    temporalPort: f.temporalPort,
    uiPort: f.uiPort,
    minioPort: f.minioPort,
    consolePort: f.consolePort,
    computeWorkers: f.workers,
    drives: f.drives,
    ...(f.tls ? { tls: true } : {}),
  });
}

function options(f: StackFlags): StackOptions {
  return stackOptionsFromEnv(process.env, {
    home: f.home,
    temporalPort: f.temporalPort,
    uiPort: f.uiPort,
    minioPort: f.minioPort,
    consolePort: f.consolePort,
    // Only a flag given turns it on; unset, LTH_TLS (read by stackOptionsFromEnv) decides.
    ...(f.tls ? { tls: true } : {}),
  });
}

const out = (line = '') => process.stdout.write(`${line}\n`);
const progress = (line: string) => process.stderr.write(`${line}\n`);

function printEndpoints(e: StackEndpoints): void {
  out(`Temporal    ${e.temporal.address}  (namespace ${e.temporal.namespace})`);
  if (e.temporal.uiUrl) out(`  UI        ${e.temporal.uiUrl}`);
  out(`S3          ${e.s3.endpoint}  (bucket ${e.s3.bucket})`);
  if (e.s3.consoleUrl) {
    const login = e.embedded ? `  (login ${e.s3.accessKey} / ${e.s3.secretKey})` : '';
    out(`  console   ${e.s3.consoleUrl}${login}`);
  }
}

async function upExternal(): Promise<void> {
  const e = resolveEndpoints();
  progress(`TEMPORAL_ADDRESS / S3_ENDPOINT are set: using the external services, starting nothing`);
  const c = await checkEndpoints(e);
  printEndpoints(e);
  const problems: string[] = [];
  if (!c.temporal.reachable)
    problems.push(`Temporal at ${e.temporal.address} is not reachable: ${c.temporal.error ?? ''}`);
  else if (!c.temporal.namespace) {
    problems.push(`Temporal namespace ${e.temporal.namespace} does not exist: ${c.temporal.error ?? ''}`);
  }
  if (!c.s3.reachable)
    problems.push(`S3 at ${e.s3.endpoint} is not reachable or refuses the keys: ${c.s3.error ?? ''}`);
  if (problems.length > 0) throw new Error(problems.join('\n'));
  if (c.temporal.missingSearchAttributes.length > 0) {
    progress(
      `warning: namespace ${e.temporal.namespace} lacks the search attributes ` +
        `${c.temporal.missingSearchAttributes.join(', ')}; an operator must create them once ` +
        `(temporal operator search-attribute create), or workflows that set them fail`,
    );
  }
  if (!c.s3.bucket) progress(`warning: bucket ${e.s3.bucket} does not exist yet at ${e.s3.endpoint}`);
  out('external services reachable');
}

function statusLine(s: ServiceStatus): string {
  const state = s.running ? (s.healthy ? 'running, healthy' : 'running, NOT healthy') : 'stopped';
  const pid = s.pid !== null ? ` pid ${s.pid}` : '';
  const other = s.portTakenByOther ? `  (port in use by another process)` : '';
  return `${s.name.padEnd(10)} ${state.padEnd(20)}${pid.padEnd(11)} ${s.address}  ${s.url}${other}`;
}

/** `lth status` without an experiment (cli/commands/status.ts): the embedded services. */
export async function printStackStatus(f: StackFlags & { json?: boolean }): Promise<void> {
  if ((f.profile ?? process.env.LTH_PROFILE) === 'cluster') {
    const cs = await clusterStatus(clusterOptions(f));
    if (f.json) {
      out(JSON.stringify(cs, null, 2));
      return;
    }
    out(`cluster home ${cs.home}`);
    for (const svc of cs.services) out(statusLine(svc));
    return;
  }
  const st = await stackStatus(options(f));
  if (f.json) {
    out(JSON.stringify(st, null, 2));
    return;
  }
  out(`stack home ${st.home}`);
  out(statusLine(st.temporal));
  out(statusLine(st.minio));
  if (st.tlsFront) out(statusLine(st.tlsFront));
  if (process.env.TEMPORAL_ADDRESS || process.env.S3_ENDPOINT) {
    out('note: TEMPORAL_ADDRESS / S3_ENDPOINT are set, so runs use those services, not this stack');
  }
}

export function registerStackCommands(program: Command): void {
  withStackFlags(program.command('up'))
    .description(
      'start the embedded Temporal dev server and MinIO (or check the external ones when configured)',
    )
    .action(async (f: StackFlags) => {
      if (f.profile === 'cluster') {
        const o = clusterOptions(f);
        const e = await clusterUp(o, progress);
        printEndpoints(e);
        out(`cluster home ${o.home}  (logs in logs/; \`lth down --profile cluster\` stops it)`);
        out(
          `${o.computeWorkers} compute workers and the light worker are running; other commands reach this cluster`,
        );
        out(
          `with LTH_PROFILE=cluster, e.g. LTH_PROFILE=cluster npx lth lottery --config <spec>, LTH_PROFILE=cluster npx lth status`,
        );
        if (e.temporal.tls) {
          out(
            `TLS: CA ${e.temporal.tls.caPath}; client certificate ${e.temporal.tls.certPath}; add LTH_TLS=1 as well`,
          );
        }
        return;
      }
      if (process.env.TEMPORAL_ADDRESS || process.env.S3_ENDPOINT) return upExternal();
      const o = options(f);
      const e = await stackUp(o, progress);
      printEndpoints(e);
      out(`stack home  ${o.home}  (logs there; \`lth down\` stops it)`);
      if (e.temporal.tls) {
        out(`TLS         CA ${e.temporal.tls.caPath}; client certificate ${e.temporal.tls.certPath}`);
        out(
          '            other commands reach this stack with LTH_TLS=1, e.g. LTH_TLS=1 npx lth lottery --config <spec>',
        );
      }
    });

  withStackFlags(program.command('down'))
    .description('stop the embedded stack (SIGTERM, SIGKILL after the grace period)')
    .option('--grace <seconds>', 'seconds to wait after SIGTERM', (v) => Number(v), 10)
    .action(async (f: StackFlags & { grace: number }) => {
      const results =
        f.profile === 'cluster'
          ? await clusterDown(clusterOptions(f), f.grace * 1000)
          : await stackDown(options(f), f.grace * 1000);
      for (const r of results) {
        out(
          r.stopped
            ? `${r.name}: stopped pid ${r.pid}${r.killed ? ' (with SIGKILL after the grace period)' : ''}`
            : `${r.name}: was not running`,
        );
      }
      if (process.env.TEMPORAL_ADDRESS || process.env.S3_ENDPOINT) {
        out('(external services named by TEMPORAL_ADDRESS / S3_ENDPOINT are not ours to stop)');
      }
    });
}
