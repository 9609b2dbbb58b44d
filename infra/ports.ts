// Local ports: free ones picked at run time, so a test or bench stack never collides with a
// developer's `lth up` or with another test run on the same machine; and the two probes the
// embedded stack uses, which answer true or false and never throw. Only 127.0.0.1 is bound or
// dialled unless a caller names another host.
import fs from 'node:fs';
import net from 'node:net';

/** The one interface the embedded services listen on. */
export const LOOPBACK = '127.0.0.1';

/** Ports below this are never handed out by the kernel as the local end of an outgoing connection (Linux's default). */
const DEFAULT_EPHEMERAL_LOW = 32_768;
/** Where freePorts draws from: registered ports above the well-known services, below the ephemeral range. */
const DRAW_LOW = 10_000;

function ephemeralLow(): number {
  try {
    const lo = Number(
      fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0],
    );
    return Number.isInteger(lo) && lo > 0 ? lo : DEFAULT_EPHEMERAL_LOW;
  } catch {
    return DEFAULT_EPHEMERAL_LOW;
  }
}

function listenOn(port: number): Promise<net.Server | null> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(null));
    s.listen({ port, host: LOOPBACK, exclusive: true }, () => resolve(s));
  });
}

/**
 * n distinct ports that were free on 127.0.0.1 a moment ago, drawn at random below the kernel's ephemeral range:
 * a port from that range (what listen(0) gives) can be taken, between this call and the service's start, as the
 * local end of any process's outgoing connection, which made parallel test stacks fail now and then with "port
 * already in use". Falls back to listen(0) where there is no room below the range.
 */
export async function freePorts(n: number): Promise<number[]> {
  const high = ephemeralLow() - 1;
  // All servers stay open until every port is known, so no port is handed out twice.
  const servers: net.Server[] = [];
  try {
    if (high - DRAW_LOW >= 1000) {
      for (let tries = 0; servers.length < n && tries < n * 100; tries++) {
        const s = await listenOn(DRAW_LOW + Math.floor(Math.random() * (high - DRAW_LOW + 1)));
        if (s) servers.push(s);
      }
    }
    while (servers.length < n) {
      const s = await listenOn(0);
      if (!s) throw new Error('could not bind any port on 127.0.0.1');
      servers.push(s);
    }
    return servers.map((s) => {
      const a = s.address();
      if (a === null || typeof a === 'string') throw new Error('unexpected server address');
      return a.port;
    });
  } finally {
    await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  }
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
