// Local ports: free ones picked at run time, so a test or bench stack never collides with a
// developer's `lth up` or with another test run on the same machine; and the two probes the
// embedded stack uses, which answer true or false and never throw. Only 127.0.0.1 is bound or
// dialled unless a caller names another host.
import net from 'node:net';

/** The one interface the embedded services listen on. */
export const LOOPBACK = '127.0.0.1';

/** n distinct ports that were free on 127.0.0.1 a moment ago. */
export async function freePorts(n: number): Promise<number[]> {
  // All servers stay open until every port is known, so the kernel cannot hand one out twice.
  const servers = await Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<net.Server>((resolve, reject) => {
          const s = net.createServer();
          s.once('error', reject);
          s.listen(0, LOOPBACK, () => resolve(s));
        }),
    ),
  );
  const ports = servers.map((s) => {
    const a = s.address();
    if (a === null || typeof a === 'string') throw new Error('unexpected server address');
    return a.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** Whether something accepts connections on host:port. */
export function isListening(port: number, host = LOOPBACK, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ port, host });
    const done = (v: boolean) => {
      sock.destroy();
      resolve(v);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** Whether we could bind host:port right now (the reliable "is it free" test). */
export function canBind(port: number, host = LOOPBACK): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once('error', () => resolve(false));
    srv.listen({ port, host, exclusive: true }, () => srv.close(() => resolve(true)));
  });
}
