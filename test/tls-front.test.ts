/**
 * The embedded stack's mTLS front (infra/tls-front.ts) on its own: it forwards a client holding the stack's client
 * certificate, and its log tells a port probe (silent), a client that hangs up mid-handshake and a refusal apart.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';

import { freePorts } from '../infra/ports';
import { makeTlsMaterial } from '../infra/tls';
import { startTlsFront, type TlsFront } from '../infra/tls-front';

const lines: string[] = [];
let front: TlsFront;
let upstream: net.Server;
let material: Awaited<ReturnType<typeof makeTlsMaterial>>;
let port: number;

before(async () => {
  material = await makeTlsMaterial();
  const [frontPort, targetPort] = await freePorts(2);
  port = frontPort as number;
  // The "server" behind the front: echoes what it reads.
  upstream = net.createServer((s) => s.pipe(s));
  await new Promise<void>((resolve) => upstream.listen(targetPort, '127.0.0.1', resolve));
  front = await startTlsFront({
    listen: { host: '127.0.0.1', port },
    target: { host: '127.0.0.1', port: targetPort as number },
    ca: material.caCert,
    cert: material.serverCert,
    key: material.serverKey,
    log: (line) => lines.push(line),
  });
});

after(async () => {
  await front?.close();
  await new Promise<void>((resolve) => (upstream ? upstream.close(() => resolve()) : resolve()));
});

/** The log lines from index `from` on, once there is one (or none after 3 s). */
async function linesAfter(from: number, ms = 3000): Promise<string[]> {
  const deadline = Date.now() + ms;
  while (lines.length === from && Date.now() < deadline) await new Promise((r) => setTimeout(r, 25));
  return lines.slice(from);
}

function rawConnect(): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

test('the TLS front forwards a client that holds the stack certificate', async () => {
  const s = tls.connect({
    host: '127.0.0.1',
    port,
    ca: material.caCert,
    cert: material.clientCert,
    key: material.clientKey,
    servername: 'localhost',
    ALPNProtocols: ['h2'],
  });
  await new Promise<void>((resolve, reject) => s.once('secureConnect', resolve).once('error', reject));
  s.write('ping');
  const echoed = await new Promise<string>((resolve) => s.once('data', (d: Buffer) => resolve(d.toString())));
  s.destroy();
  assert.equal(echoed, 'ping');
});

test('the TLS front says nothing of a port probe, and logs a client that hangs up mid-handshake', async () => {
  const seen = lines.length;
  (await rawConnect()).destroy();
  // A probe leaves no line; the next connection's line is the first one after it.
  const s = await rawConnect();
  // A TLS record header announcing a handshake message that never completes.
  s.write(Buffer.from([0x16, 0x03, 0x01, 0x00, 0xf0, 0x01, 0x00, 0x00, 0xec, 0x03, 0x03]));
  await new Promise((r) => setTimeout(r, 100));
  s.resetAndDestroy();
  const got = await linesAfter(seen);
  assert.equal(got.length, 1, `one line, for the hang-up only: ${JSON.stringify(got)}`);
  assert.match(got[0]!, /127\.0\.0\.1:\d+ hung up during the TLS handshake/);
});

test('the TLS front logs why it refuses a plaintext client', async () => {
  const seen = lines.length;
  const s = await rawConnect();
  s.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  const got = await linesAfter(seen);
  s.destroy();
  assert.match(got[0] ?? '', /refused 127\.0\.0\.1:\d+: not a TLS client .*LTH_TLS=1/);
});
