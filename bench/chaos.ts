/**
 * `npm run chaos`: the chaos run of bench/chaos-run.ts over several seeds, after one undisturbed run of the same
 * specs, into bench/results/chaos.json.
 *
 *   npm run chaos                                   # 5 seeds, 5 kills each, MinIO down 30 s, the server restarted
 *   npm run chaos -- --seeds 1,2 --kills 6 --outage 10
 */
import path from 'node:path';

import { REPO_ROOT } from '../infra/paths';
import { removeHome, runChaos, runUndisturbed, type ChaosRow } from './chaos-run';
import { benchCommand, machineInfo, writeResult } from './support';

const log = (line: string) => process.stderr.write(`[chaos] ${line}\n`);

async function main(): Promise<void> {
  const o = benchCommand(
    'chaos',
    'An undisturbed run, then the chaos run of bench/chaos-run.ts (compute workers killed, MinIO stopped, the ' +
      'server restarted) over several seeds; writes bench/results/chaos.json.',
  )
    .option('--seeds <list>', 'fault-schedule seeds', '1,2,3,4,5')
    .option('--kills <n>', 'compute-worker SIGKILLs per seed (>= 5)', '5')
    .option('--outage <seconds>', 'how long MinIO is stopped', '30')
    .parse(process.argv)
    .opts<{ seeds: string; kills: string; outage: string }>();
  const seeds = o.seeds.split(',').map(Number);
  const kills = Number(o.kills);
  const outage = Number(o.outage);
  if (seeds.some((s) => !Number.isInteger(s)) || !Number.isInteger(kills) || kills < 1 || !(outage >= 0))
    throw new Error('--seeds takes integers, --kills a positive integer, --outage seconds');
  const home = path.join(REPO_ROOT, '.data', 'chaos');
  log('undisturbed run');
  const reference = await runUndisturbed(path.join(home, 'reference'), log);
  log(`undisturbed: ${reference.wallSeconds.toFixed(1)} s, ${reference.digests.size} objects`);
  const runs: ChaosRow[] = [];
  for (const seed of seeds) {
    log(`seed ${seed}`);
    const row = await runChaos(
      { seed, kills, storeOutageSeconds: outage, home: path.join(home, `seed-${seed}`), log },
      reference,
    );
    runs.push(row);
    log(
      `seed ${seed}: completed ${row.completed}, identical ${row.identical} (${row.differing.length} differ), ` +
        `${row.kills} kills (${row.killsDuringUpload} during an upload), ${row.wallSeconds.toFixed(1)} s, ` +
        `lost work ${row.lostWorkSeconds.toFixed(1)} s`,
    );
    if (row.identical) removeHome(path.join(home, `seed-${seed}`));
  }
  const out = path.join(REPO_ROOT, 'bench', 'results', 'chaos.json');
  // Empty: no seed ran. A seed whose outputs differ is a result (the finding), written and exiting 1.
  writeResult(
    out,
    {
      machine: machineInfo(),
      backend: 'wasm (every worker)',
      objects: reference.digests.size,
      storeOutageSeconds: outage,
      runs,
    },
    { isEmpty: (r) => r.runs.length === 0 },
  );
  log(`wrote ${path.relative(REPO_ROOT, out)}`);
  if (runs.some((r) => !r.identical)) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`chaos: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
