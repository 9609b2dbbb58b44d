/**
 * The Temporal TLS front of `lth up --tls`: the dev server has no TLS settings, so this process listens on the
 * stack's Temporal port, terminates TLS and requires a client certificate signed by the stack's CA (mTLS), and
 * passes the decrypted HTTP/2 stream to the dev server's plaintext port on 127.0.0.1.
 *
 * Guarantees:
 * - a connection is forwarded only after a completed handshake in which the client presented a certificate that
 *   chains to the CA and is valid now; anything else is refused before one byte reaches the server, and the refusal
 *   is logged with the peer address and the reason;
 * - only TLS 1.2+ and ALPN "h2" (gRPC) are offered;
 * - SIGTERM / SIGINT close the listener and every open connection, then exit.
 *
 * Run as a detached service by infra/embedded-stack.ts:
 *   node --import tsx infra/tls-front.ts --listen 127.0.0.1:7233 --target 127.0.0.1:7234 --tls-dir <home>/tls
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import tls from 'node:tls';
import { parseArgs } from 'node:util';

export interface TlsFrontOptions {
  listen: { host: string; port: number };
  target: { host: string; port: number };
  /** PEM text. */
  ca: string;
  cert: string;
  key: string;
  log: (line: string) => void;
}

export interface TlsFront {
  close(): Promise<void>;
}

function hostPort(s: string, flag: string): { host: string; port: number } {
  const m = /^(.+):(\d{1,5})$/.exec(s);
  const port = Number(m?.[2]);
  if (!m || !(port >= 1 && port <= 65535))
    throw new Error(`${flag}: expected host:port, got ${JSON.stringify(s)}`);
  return { host: m[1] as string, port };
}

/** OpenSSL's reason for a failed handshake, in words a user acts on. */
export function refusalText(err: Error): string {
  const reason = /SSL routines:[^:]*:([^:]+)/.exec(err.message)?.[1] ?? err.message;
  if (/peer did not return a certificate/.test(reason)) return 'no client certificate (mTLS is required)';
  if (/wrong version number|http request|unknown protocol/.test(reason))
    return `not a TLS client (${reason}): a client of this stack needs LTH_TLS=1 or TEMPORAL_TLS_*`;
  if (/certificate verify failed|unknown ca|bad certificate/.test(reason))
    return `client certificate not from this stack's CA (${reason})`;
  return reason;
}

export function startTlsFront(o: TlsFrontOptions): Promise<TlsFront> {
  const open = new Set<net.Socket>();
  const server = tls.createServer(
    {
      ca: o.ca,
      cert: o.cert,
      key: o.key,
      requestCert: true,
      rejectUnauthorized: true,
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',
    },
    (client) => {
      const upstream = net.connect(o.target);
      open.add(client).add(upstream);
      const end = () => {
        client.destroy();
        upstream.destroy();
        open.delete(client);
        open.delete(upstream);
      };
      client.on('error', end).on('close', end);
      upstream.on('error', (err) => {
        o.log(`cannot reach the server at ${o.target.host}:${o.target.port}: ${err.message}`);
        end();
      });
      upstream.on('close', end);
      client.pipe(upstream).pipe(client);
    },
  );
  // Peers by raw connection, noted on arrival: a connection reset has lost its address by the time it errs.
  const peers = new WeakMap<net.Socket, string>();
  server.on('connection', (raw: net.Socket) =>
    peers.set(raw, `${raw.remoteAddress ?? '?'}:${raw.remotePort ?? '?'}`),
  );
  server.on('tlsClientError', (err: NodeJS.ErrnoException, socket) => {
    // Only the raw connection knows what was sent: Node keeps it as the TLS socket's `_parent` (not public API;
    // where it is missing, a reset stays silent, as a probe's does).
    const parent = (socket as { _parent?: unknown })._parent;
    const raw = parent instanceof net.Socket ? parent : null;
    const peer = (raw && peers.get(raw)) ?? `${socket.remoteAddress ?? '?'}:${socket.remotePort ?? '?'}`;
    if (err.code !== 'ECONNRESET') o.log(`refused ${peer}: ${refusalText(err)}`);
    // A peer that closes before a word of TLS (a port probe, a health check) was not refused anything; one that
    // closes mid-handshake is worth a line.
    else if (raw && raw.bytesRead > 0)
      o.log(
        `${peer} hung up during the TLS handshake (after ${raw.bytesRead} bytes), before the front decided anything`,
      );
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(o.listen.port, o.listen.host, () => {
      server.off('error', reject);
      resolve({
        close: () =>
          new Promise<void>((done) => {
            for (const s of open) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      listen: { type: 'string' },
      target: { type: 'string' },
      'tls-dir': { type: 'string' },
    },
    strict: true,
  });
  if (!values.listen || !values.target || !values['tls-dir'])
    throw new Error('usage: tls-front --listen HOST:PORT --target HOST:PORT --tls-dir DIR');
  const dir = values['tls-dir'];
  const read = (name: string) => fs.readFileSync(path.join(dir, name), 'utf8');
  const log = (line: string) => process.stderr.write(`${new Date().toISOString()} tls-front: ${line}\n`);
  const front = await startTlsFront({
    listen: hostPort(values.listen, '--listen'),
    target: hostPort(values.target, '--target'),
    ca: read('ca.crt'),
    cert: read('server.crt'),
    key: read('server.key'),
    log,
  });
  log(
    `listening on ${values.listen} (mTLS, client certificates from ${dir}/ca.crt), forwarding to ${values.target}`,
  );
  const stop = () => {
    void front.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`tls-front: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
