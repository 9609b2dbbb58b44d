// The TLS material of `lth up --tls` (infra/tls.ts): a CA and two certificates restricted to their purposes,
// private keys readable by the owner only, reused while sound and made again as a whole when not.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';

import { ensureTlsMaterial, RENEW_BEFORE_DAYS, tlsMaterialProblem } from '../infra/tls';

const SERVER_AUTH = '1.3.6.1.5.5.7.3.1';
const CLIENT_AUTH = '1.3.6.1.5.5.7.3.2';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'lth-tls-material-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

const cert = (file: string) => new crypto.X509Certificate(fs.readFileSync(file));

test('the CA signs a server certificate for 127.0.0.1 and localhost and a client certificate, each for one purpose', async () => {
  const { files: f, made } = await ensureTlsMaterial(path.join(tmp, 'a'));
  assert.equal(made, true);
  const ca = cert(f.caCert);
  const server = cert(f.serverCert);
  const client = cert(f.clientCert);
  assert.equal(ca.ca, true);
  assert.equal(server.ca, false);
  assert.equal(client.ca, false);
  assert.ok(server.verify(ca.publicKey) && client.verify(ca.publicKey));
  assert.ok(server.checkIssued(ca) && client.checkIssued(ca));
  assert.deepEqual(server.keyUsage, [SERVER_AUTH]);
  assert.deepEqual(client.keyUsage, [CLIENT_AUTH]);
  assert.equal(server.checkIP('127.0.0.1'), '127.0.0.1');
  assert.equal(server.checkHost('localhost'), 'localhost');
  assert.equal(server.checkIP('10.0.0.1'), undefined);
  // MinIO's folder holds the server's pair and the CA certificate, never the CA key.
  assert.deepEqual(fs.readdirSync(f.minioCertsDir).sort(), ['CAs', 'private.key', 'public.crt']);
  assert.deepEqual(fs.readdirSync(path.join(f.minioCertsDir, 'CAs')), ['ca.crt']);
});

test('private keys and the TLS folder are readable by their owner only', async () => {
  const { files: f } = await ensureTlsMaterial(path.join(tmp, 'b'));
  assert.equal(fs.statSync(f.dir).mode & 0o777, 0o700);
  for (const k of [f.caKey, f.serverKey, f.clientKey, path.join(f.minioCertsDir, 'private.key')])
    assert.equal(fs.statSync(k).mode & 0o077, 0, `${k} is not private`);
});

test('sound material is reused byte for byte; damaged or expiring material is made again, CA included', async () => {
  const home = path.join(tmp, 'c');
  const { files: f } = await ensureTlsMaterial(home);
  const before = fs.readFileSync(f.caCert, 'utf8');
  const again = await ensureTlsMaterial(home);
  assert.equal(again.made, false);
  assert.equal(fs.readFileSync(f.caCert, 'utf8'), before);

  const soon = new Date(Date.now() + (825 - RENEW_BEFORE_DAYS + 1) * 86_400_000);
  assert.match((await tlsMaterialProblem(f, soon)) ?? '', /expires/);

  fs.writeFileSync(f.serverCert, 'not a certificate');
  assert.match((await tlsMaterialProblem(f)) ?? '', /server certificate unreadable/);
  const lines: string[] = [];
  const remade = await ensureTlsMaterial(home, (l) => lines.push(l));
  assert.equal(remade.made, true);
  assert.notEqual(fs.readFileSync(f.caCert, 'utf8'), before);
  assert.equal(await tlsMaterialProblem(f), null);
  assert.match(lines.join('\n'), /made new certificates .*server certificate unreadable/);
});

test('a key that does not belong to its certificate is found', async () => {
  const home = path.join(tmp, 'd');
  const { files: f } = await ensureTlsMaterial(home);
  fs.copyFileSync(f.serverKey, f.clientKey);
  assert.match((await tlsMaterialProblem(f)) ?? '', /client\.key does not belong to .*client\.crt/);
});
