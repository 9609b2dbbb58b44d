// The cluster profile's options and endpoints (infra/cluster-options.ts), and LTH_PROFILE in endpoint resolution:
// pure functions of the environment, checked without any service.
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';

import {
  clusterOptionsFromEnv,
  clusterPorts,
  defaultClusterOptions,
  temporalServerPorts,
  workerMetricsPort,
} from '../infra/cluster-options';
import { defaultStackOptions, endpointsToEnv, resolveEndpoints } from '../infra/endpoints';

test('the defaults differ from every embedded-stack port, so both profiles run side by side', () => {
  const e = defaultStackOptions();
  const embedded = new Set([e.temporalPort, e.uiPort, e.minioPort, e.consolePort]);
  const clash = clusterPorts(defaultClusterOptions()).filter((p) => embedded.has(p.port));
  assert.deepEqual(clash, []);
});

test('the Temporal services, metrics and workers take ports derived from LTH_CLUSTER_TEMPORAL_PORT', () => {
  const o = clusterOptionsFromEnv({ LTH_CLUSTER_TEMPORAL_PORT: '21000', LTH_CLUSTER_WORKERS: '3' });
  const t = temporalServerPorts(o.temporalPort);
  assert.deepEqual([t.frontend, t.history, t.matching, t.worker], [21000, 21001, 21002, 21003]);
  assert.equal(t.frontendMembership, 21100);
  assert.equal(workerMetricsPort(o, 'light'), 21300);
  assert.equal(workerMetricsPort(o, 3), 21303);
  const ports = clusterPorts(o).map((p) => p.port);
  assert.equal(new Set(ports).size, ports.length, 'every port differs');
  assert.ok(ports.includes(21303) && !ports.includes(21304), 'one metrics port per compute worker');
});

test('a port clash and an invalid variable are refused, naming what clashes or the variable', () => {
  assert.throws(
    () => clusterOptionsFromEnv({ LTH_CLUSTER_TEMPORAL_PORT: '21000', LTH_CLUSTER_UI_PORT: '21001' }),
    /Temporal history and Temporal UI are both on 21001/,
  );
  assert.throws(() => clusterOptionsFromEnv({ LTH_CLUSTER_DRIVES: '3' }), /LTH_CLUSTER_DRIVES="3"/);
  assert.throws(
    () => clusterOptionsFromEnv({ LTH_CLUSTER_TEMPORAL_PORT: '40000' }),
    /smallint \(at most 32767\)/,
  );
  assert.throws(() => clusterOptionsFromEnv({ LTH_CLUSTER_POSTGRES_PORT: 'x' }), /LTH_CLUSTER_POSTGRES_PORT/);
});

test('LTH_PROFILE=cluster resolves to the cluster, which round-trips through a worker environment', () => {
  const env = { LTH_PROFILE: 'cluster', LTH_CLUSTER_HOME: '/tmp/c', LTH_CLUSTER_MINIO_PORT: '29100' };
  const e = resolveEndpoints(env);
  assert.equal(e.temporal.address, '127.0.0.1:7333');
  assert.equal(e.s3.endpoint, 'http://127.0.0.1:29100');
  assert.equal(e.embedded, false);
  assert.deepEqual(resolveEndpoints(endpointsToEnv(e)), e);
  assert.equal(clusterOptionsFromEnv(env).home, path.resolve('/tmp/c'));
  assert.throws(
    () => resolveEndpoints({ LTH_PROFILE: 'cluster', TEMPORAL_ADDRESS: 'h:1', S3_ENDPOINT: 'http://h:2' }),
    /unset TEMPORAL_ADDRESS and S3_ENDPOINT/,
  );
  assert.throws(() => resolveEndpoints({ LTH_PROFILE: 'prod' }), /LTH_PROFILE="prod"/);
});
