// Where the project lives on disk, for the code that runs from a checkout (CLI, workers, tests,
// benchmarks). Pure path arithmetic: nothing here reads the file system or the environment.
import path from 'node:path';

/** The repository root, the folder that holds package.json. */
export const REPO_ROOT = path.resolve(__dirname, '..');

/** Where `npm run setup` (infra/provision.sh) puts the `temporal` and `minio` binaries. */
export const TOOLS_BIN = path.join(REPO_ROOT, '.tools', 'bin');
