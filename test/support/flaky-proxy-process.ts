// Starts test/support/flaky-proxy.ts as a child process and drives it: its port, and a mode switch that
// resolves once the proxy has taken the new mode.
import { spawn } from 'node:child_process';
import path from 'node:path';
import readline from 'node:readline';

export type ProxyMode = 'pass' | 'down' | 'silent' | `flaky ${number} ${number}`;

export interface FlakyProxy {
  port: number;
  /** host:port of the proxy. */
  address: string;
  set(mode: ProxyMode): Promise<void>;
  stop(): void;
}

export async function startFlakyProxy(host: string, port: number, seed = 1): Promise<FlakyProxy> {
  const child = spawn(
    process.execPath,
    ['--import', 'tsx', path.join(__dirname, 'flaky-proxy.ts'), host, String(port), String(seed)],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async (): Promise<string> => {
    const r = await lines.next();
    if (r.done) throw new Error('the flaky proxy exited');
    return r.value;
  };
  const own = Number(await next());
  return {
    port: own,
    address: `127.0.0.1:${own}`,
    async set(mode) {
      child.stdin!.write(`${mode}\n`);
      const answer = await next();
      if (answer !== `ok ${mode.split(' ')[0]}`) throw new Error(`flaky proxy answered ${answer} to ${mode}`);
    },
    stop() {
      child.stdin!.end();
      child.kill();
    },
  };
}
