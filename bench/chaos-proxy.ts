// A TCP proxy in its own process between one compute worker and MinIO, for the chaos run: it slows uploads to
// `bytesPerSecond` so that a checkpoint or shard upload takes a moment, and prints `upload` when a connection has
// sent more than 256 KiB that the store has not answered yet (an upload in flight), `answered` when the answer
// comes. A kill on `upload` lands in the middle of a checkpoint or shard upload. Prints its port first.
//
//   node --import tsx bench/chaos-proxy.ts <upstream port> [bytes per second]
import net from 'node:net';

import { benchCommand } from './support';

const cli = benchCommand(
  'bench/chaos-proxy',
  "The chaos run's throttling TCP proxy to MinIO (started by bench/chaos-run.ts): prints its port, then `upload` " +
    'when an upload is in flight and `answered` when the store answers it; exits when stdin closes.',
)
  .argument('<upstreamPort>', "MinIO's port on 127.0.0.1")
  .argument('[bytesPerSecond]', 'upload rate', '2000000')
  .parse(process.argv);
const [upstreamArg, rateArg] = cli.processedArgs as [string, string];
const upstreamPort = Number(upstreamArg);
const bytesPerSecond = Number(rateArg);
if (!Number.isInteger(upstreamPort) || upstreamPort < 1 || upstreamPort > 65535)
  cli.error(`error: upstreamPort must be a TCP port, got '${upstreamArg}'`);
if (!(bytesPerSecond > 0)) cli.error(`error: bytesPerSecond must be a positive number, got '${rateArg}'`);
const UPLOAD_BYTES = 256 * 1024;

const server = net.createServer((client) => {
  const upstream = net.connect(upstreamPort, '127.0.0.1');
  let unanswered = 0;
  let reported = false;
  client.on('data', (chunk: Buffer) => {
    upstream.write(chunk);
    unanswered += chunk.length;
    if (!reported && unanswered > UPLOAD_BYTES) {
      reported = true;
      process.stdout.write('upload\n');
    }
    // Throttle: hold the next chunk back for as long as this one takes at the configured rate.
    client.pause();
    setTimeout(() => client.resume(), (chunk.length / bytesPerSecond) * 1000);
  });
  upstream.on('data', (chunk: Buffer) => {
    client.write(chunk);
    if (reported) process.stdout.write('answered\n');
    unanswered = 0;
    reported = false;
  });
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(`${(server.address() as net.AddressInfo).port}\n`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
