// A TCP proxy in its own process (so that it keeps running while the test blocks its thread) that forwards to
// host:port and, on the line `drop <ms>` on stdin, closes every connection it holds after <ms>. It prints its
// port, then `scheduled` for every drop it accepted.
import net from 'node:net';
import readline from 'node:readline';

const [host, port] = [process.argv[2] ?? '127.0.0.1', Number(process.argv[3])];
const open = new Set<net.Socket>();
const server = net.createServer((client) => {
  const upstream = net.connect(port, host);
  open.add(client);
  open.add(upstream);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
    open.delete(client);
    open.delete(upstream);
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  const m = /^drop (\d+)$/.exec(line.trim());
  if (!m) return;
  setTimeout(() => {
    for (const s of open) s.destroy();
  }, Number(m[1]));
  process.stdout.write('scheduled\n');
});
process.stdin.on('end', () => process.exit(0));
