import path from 'node:path';

import { Command } from 'commander';

import { computeWorkerCommand } from '../../workers/compute';
import { lightWorkerCommand } from '../../workers/light';
import { spawnWorker, stopWorker } from '../../workers/spawn';

export function registerWorkerCommand(program: Command): void {
  const worker = program
    .command('worker')
    .description('run workers (default: one light and one compute worker)');
  worker.addCommand(computeWorkerCommand());
  worker.addCommand(lightWorkerCommand());
  worker
    .command('all', { isDefault: true })
    .description('run one light and one compute worker as child processes until interrupted')
    .option('--log-dir <dir>', 'write worker logs here instead of the terminal')
    .action(async (o: { logDir?: string }) => {
      const workers = (['light', 'compute'] as const).map((role) =>
        spawnWorker(role, { logFile: o.logDir ? path.join(o.logDir, `${role}-worker.log`) : undefined }),
      );
      const stop = () => {
        for (const w of workers) void stopWorker(w);
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      await Promise.all(workers.map((w) => w.exited));
    });
}
