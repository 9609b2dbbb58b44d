// A TCP proxy in its own process that makes a service slow and unreliable on command: it forwards to host:port
// and, per mode, delays every chunk, resets connections at random points, refuses everything, or accepts and
// never answers. Randomness comes from a seed (argv[4], default 1), so a run's faults are the same draws each time
// (when they land still depends on timing).
//
//   node --import tsx test/support/flaky-proxy.ts HOST PORT [SEED]
//
// It prints its port, then `ok <mode>` for every command it accepted on stdin:
//   pass                      forward faithfully
//   flaky <dropP> <delayMs>   each chunk delayed by 0..delayMs (order kept); each new connection, with probability
//                             dropP, is reset (TCP RST) after a random 0..16 KiB in one direction
//   down                      reset every open connection and every new one at once (as a stopped server would)
//   silent                    close open connections, accept new ones and never answer (as a hung server would)
import net from 'node:net';
import readline from 'node:readline';

type Mode =
  { kind: 'pass' } | { kind: 'flaky'; dropP: number; delayMs: number } | { kind: 'down' | 'silent' };

const [host, port, seed] = [
  process.argv[2] ?? '127.0.0.1',
  Number(process.argv[3]),
  Number(process.argv[4] ?? 1),
];

/** mulberry32: a small seeded generator, uniform in [0, 1). */
function rng(s: number): () => number {
  let a = s >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(seed);

let mode: Mode = { kind: 'pass' };
const open = new Set<net.Socket>();

function reset(s: net.Socket): void {
  if (!s.destroyed) s.resetAndDestroy();
}

/**
 * Copies src to dst, each chunk after its own delay, strictly in order (one queue per direction: timers due at the
 * same moment may fire in any order, which would reorder the bytes); resets both after `limit` bytes.
 */
function forward(
  src: net.Socket,
  dst: net.Socket,
  delayMs: () => number,
  limit: number,
  both: () => void,
): void {
  let sent = 0;
  const queue: (Buffer | null)[] = [];
  let busy = false;
  const pump = () => {
    const chunk = queue.shift();
    if (chunk === undefined || dst.destroyed) {
      busy = false;
      return;
    }
    busy = true;
    setTimeout(() => {
      if (dst.destroyed) return;
      if (chunk === null) dst.end();
      else if (sent + chunk.length > limit) {
        dst.write(chunk.subarray(0, Math.max(0, limit - sent)), () => both());
        sent = limit;
        return;
      } else {
        sent += chunk.length;
        dst.write(chunk);
      }
      pump();
    }, delayMs());
  };
  const push = (c: Buffer | null) => {
    queue.push(c);
    if (!busy) pump();
  };
  src.on('data', (chunk: Buffer) => push(chunk));
  src.on('end', () => push(null));
}

const server = net.createServer((client) => {
  client.on('error', () => undefined);
  const m = mode;
  if (m.kind === 'down') return reset(client);
  open.add(client);
  client.on('close', () => open.delete(client));
  if (m.kind === 'silent') return;
  const upstream = net.connect(port, host);
  upstream.on('error', () => reset(client));
  open.add(upstream);
  upstream.on('close', () => {
    open.delete(upstream);
    if (!client.destroyed) client.end();
  });
  client.on('close', () => upstream.destroy());
  const delay = m.kind === 'flaky' ? () => Math.floor(random() * (m.delayMs + 1)) : () => 0;
  let up = Infinity;
  let down = Infinity;
  if (m.kind === 'flaky' && random() < m.dropP) {
    const k = Math.floor(random() * 16384);
    if (random() < 0.5) up = k;
    else down = k;
  }
  const both = () => {
    reset(client);
    reset(upstream);
  };
  forward(client, upstream, delay, up, both);
  forward(upstream, client, delay, down, both);
});

server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});

readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const w = line.trim().split(/\s+/);
  if (w[0] === 'pass') mode = { kind: 'pass' };
  else if (w[0] === 'flaky' && w.length === 3)
    mode = { kind: 'flaky', dropP: Number(w[1]), delayMs: Number(w[2]) };
  else if (w[0] === 'down' || w[0] === 'silent') {
    mode = { kind: w[0] };
    // Connections already open would carry on as before: close them, so the mode applies to every request.
    for (const s of open) {
      if (w[0] === 'down') reset(s);
      else s.destroy();
    }
  } else return;
  process.stdout.write(`ok ${w[0]}\n`);
});
process.stdin.on('end', () => process.exit(0));
