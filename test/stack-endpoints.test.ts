// Which services a process talks to, decided from the environment alone (no services needed).
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { test } from 'node:test';

import { SearchAttributeType } from '@temporalio/common';

import {
  cliTypeName,
  minioBinary,
  SEARCH_ATTRIBUTE_CLI_TYPES,
  temporalBinary,
} from '../infra/embedded-stack';
import {
  endpointsToEnv,
  resolveEndpoints,
  stackOptionsFromEnv,
  checkEndpoints,
  temporalTlsOptions,
} from '../infra/endpoints';
import { REPO_ROOT } from '../infra/paths';

const external = {
  TEMPORAL_ADDRESS: 'temporal.prod:7233',
  TEMPORAL_NAMESPACE: 'research',
  S3_ENDPOINT: 'https://s3.prod:9000/',
  S3_ACCESS_KEY: 'ak',
  S3_SECRET_KEY: 'sk',
  S3_BUCKET: 'tickets',
};

test('without addresses the embedded stack is used, with the documented defaults', () => {
  const e = resolveEndpoints({});
  assert.deepEqual(e, {
    temporal: { address: '127.0.0.1:7233', namespace: 'default', uiUrl: 'http://127.0.0.1:8233' },
    s3: {
      endpoint: 'http://127.0.0.1:9000',
      accessKey: 'lthworker',
      secretKey: 'lthworker-secret',
      bucket: 'lth',
      consoleUrl: 'http://127.0.0.1:9001',
    },
    embedded: true,
  });
  assert.equal(stackOptionsFromEnv({}).home, path.join(REPO_ROOT, '.data', 'stack'));
});

test('LTH_* variables move the embedded stack', () => {
  const env = {
    LTH_HOME: '/tmp/x',
    LTH_TEMPORAL_PORT: '17233',
    LTH_UI_PORT: '18233',
    LTH_MINIO_PORT: '19000',
  };
  const o = stackOptionsFromEnv({ ...env, LTH_CONSOLE_PORT: '19001' });
  assert.equal(o.home, '/tmp/x');
  assert.deepEqual([o.temporalPort, o.uiPort, o.minioPort, o.consolePort], [17233, 18233, 19000, 19001]);
  assert.equal(stackOptionsFromEnv(env, { minioPort: 29000 }).minioPort, 29000, 'overrides win over env');
  assert.equal(stackOptionsFromEnv({ LTH_TEMPORAL_PORT: '' }).temporalPort, 7233, 'empty counts as unset');
});

test('invalid variables are refused, naming each variable', () => {
  assert.throws(
    () => stackOptionsFromEnv({ LTH_TEMPORAL_PORT: 'abc', LTH_MINIO_PORT: '70000' }),
    (err: Error) => {
      assert.match(err.message, /LTH_TEMPORAL_PORT="abc"/);
      assert.match(err.message, /LTH_MINIO_PORT="70000"/);
      return true;
    },
  );
  assert.throws(() => stackOptionsFromEnv({ LTH_UI_PORT: '7233' }), /ports must differ/);
  assert.throws(() => resolveEndpoints({ ...external, S3_ACCESS_KEY: undefined }), /S3_ACCESS_KEY/);
  assert.throws(
    () => resolveEndpoints({ ...external, TEMPORAL_ADDRESS: 'no-port' }),
    /TEMPORAL_ADDRESS="no-port"/,
  );
});

test('setting only one of TEMPORAL_ADDRESS / S3_ENDPOINT is refused', () => {
  assert.throws(
    () => resolveEndpoints({ TEMPORAL_ADDRESS: 'x:7233' }),
    /TEMPORAL_ADDRESS is set but S3_ENDPOINT is not/,
  );
  assert.throws(
    () => resolveEndpoints({ S3_ENDPOINT: 'http://x:9000' }),
    /S3_ENDPOINT is set but TEMPORAL_ADDRESS/,
  );
});

test('external services come from TEMPORAL_* / S3_*, TLS paths included', () => {
  const e = resolveEndpoints({ ...external, TEMPORAL_TLS_CERT: '/c.pem', TEMPORAL_TLS_KEY: '/k.pem' });
  assert.equal(e.embedded, false);
  assert.deepEqual(e.temporal, {
    address: 'temporal.prod:7233',
    namespace: 'research',
    uiUrl: null,
    tls: { certPath: '/c.pem', keyPath: '/k.pem' },
  });
  assert.equal(e.s3.endpoint, 'https://s3.prod:9000', 'trailing slash dropped');
  assert.equal(e.s3.bucket, 'tickets');
  assert.throws(() => resolveEndpoints({ ...external, TEMPORAL_TLS_CERT: '/c.pem' }), /set together/);
});

test('endpointsToEnv round-trips through resolveEndpoints', () => {
  const embedded = resolveEndpoints({ LTH_MINIO_PORT: '19100' });
  assert.deepEqual(resolveEndpoints(endpointsToEnv(embedded)), embedded);
  const ext = resolveEndpoints({ ...external, TEMPORAL_TLS_CA: '/ca.pem' });
  assert.deepEqual(resolveEndpoints(endpointsToEnv(ext)), ext);
  assert.equal(endpointsToEnv(ext).LTH_STACK_EMBEDDED, undefined);
  const tls = resolveEndpoints({ LTH_TLS: '1', LTH_HOME: '/tmp/s' });
  assert.deepEqual(resolveEndpoints(endpointsToEnv(tls)), tls);
});

test('LTH_TLS=1 names the stack CA, its client certificate and https, with the dev server one port up', () => {
  const e = resolveEndpoints({ LTH_TLS: '1', LTH_HOME: '/tmp/s', LTH_TEMPORAL_PORT: '17300' });
  assert.deepEqual(e.temporal.tls, {
    certPath: '/tmp/s/tls/client.crt',
    keyPath: '/tmp/s/tls/client.key',
    caPath: '/tmp/s/tls/ca.crt',
    serverName: 'localhost',
  });
  assert.equal(e.s3.endpoint, 'https://127.0.0.1:9000');
  assert.equal(e.s3.caFile, '/tmp/s/tls/ca.crt');
  assert.equal(stackOptionsFromEnv({ LTH_TLS: '1', LTH_TEMPORAL_PORT: '17300' }).temporalPlainPort, 17301);
  assert.throws(() => stackOptionsFromEnv({ LTH_TLS: 'yes' }), /LTH_TLS="yes": 0 or 1/);
  assert.throws(
    () => stackOptionsFromEnv({ LTH_TLS: '1', LTH_TEMPORAL_PLAIN_PORT: '9000' }),
    /ports must differ.*temporal plaintext 9000/,
  );
});

test('binaries: an override that is not executable is named', () => {
  assert.throws(() => temporalBinary({ LTH_TEMPORAL_BIN: '/nonexistent/temporal' }), /LTH_TEMPORAL_BIN=/);
  assert.throws(() => minioBinary({ LTH_MINIO_BIN: '/nonexistent/minio' }), /LTH_MINIO_BIN=/);
});

// contract/search-attributes.ts declares them; infra derives what the embedded server registers.
test('the embedded server registers the declared search attributes, with the CLI type names', () => {
  assert.deepEqual(
    { ...SEARCH_ATTRIBUTE_CLI_TYPES },
    {
      Experiment: 'Keyword',
      RunKind: 'Keyword',
      SpecHash: 'Keyword',
      Phase: 'Keyword',
      Level: 'Int',
      RemainingPct: 'Double',
      TestAccuracy: 'Double',
      Sweep: 'Keyword',
      Trial: 'Keyword',
    },
  );
  // Every SDK type, and the server's spelling that `search-attribute list` prints, map to the
  // `--type` the CLI takes; a registered attribute is compared with the declared one that way.
  const cli = {
    TEXT: 'Text',
    KEYWORD: 'Keyword',
    INT: 'Int',
    DOUBLE: 'Double',
    BOOL: 'Bool',
    DATETIME: 'Datetime',
    KEYWORD_LIST: 'KeywordList',
  } satisfies Record<SearchAttributeType, string>;
  assert.deepEqual(Object.values(SearchAttributeType).sort(), Object.keys(cli).sort());
  for (const [sdk, name] of Object.entries(cli)) {
    assert.equal(cliTypeName(sdk), name, sdk);
    assert.equal(cliTypeName(`INDEXED_VALUE_TYPE_${sdk}`), name, `INDEXED_VALUE_TYPE_${sdk}`);
  }
});

test('TLS files that cannot be read are named by their variable, and a check reports them instead of throwing', async () => {
  assert.equal(temporalTlsOptions(undefined), undefined);
  assert.throws(
    () => temporalTlsOptions({ caPath: '/nonexistent/ca.pem' }),
    /TEMPORAL_TLS_CA: cannot read \/nonexistent\/ca.pem: ENOENT/,
  );
  assert.throws(
    () => temporalTlsOptions({ certPath: '/x.pem' }),
    /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/,
  );
  const e = resolveEndpoints({
    TEMPORAL_ADDRESS: '127.0.0.1:1',
    S3_ENDPOINT: 'http://127.0.0.1:1',
    S3_ACCESS_KEY: 'k',
    S3_SECRET_KEY: 's',
    TEMPORAL_TLS_CA: '/nonexistent/ca.pem',
  });
  const check = await checkEndpoints(e, 5000);
  assert.equal(check.temporal.reachable, false);
  assert.match(check.temporal.error ?? '', /TEMPORAL_TLS_CA: cannot read/);
});

test('checking external services gives up on a store that accepts connections and never answers', async () => {
  const held: net.Socket[] = [];
  // Holds every connection open and says nothing.
  const silent = net.createServer((socket) => held.push(socket));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', () => r()));
  const port = (silent.address() as net.AddressInfo).port;
  try {
    const e = resolveEndpoints({
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      S3_ENDPOINT: `http://127.0.0.1:${port}`,
      S3_ACCESS_KEY: 'k',
      S3_SECRET_KEY: 's',
    });
    const check = await checkEndpoints(e, 1000);
    assert.equal(check.s3.reachable, false);
    assert.match(check.s3.error ?? '', /no answer within 1 s/);
  } finally {
    for (const socket of held) socket.destroy();
    silent.close();
  }
});
