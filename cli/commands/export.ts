// `lth export`: stored weights as a PyTorch state_dict (names and layouts of the torch.nn models in
// bench/peer/lth_models.py), written as a local safetensors file.
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';

import { exportTorch } from '../../client/torch-export';
import { MODEL_NAMES } from '../../ml/models/names';
import { encodeSafetensors } from '../../store';
import { endpoints, openStore } from '../../workers/connection';

interface ExportFlags {
  out?: string;
  model?: string;
}

/** `runs/<id>/final/weights.safetensors` → `<id>-weights.torch.safetensors`. */
function defaultOut(key: string): string {
  const parts = key.replace(/\.safetensors$/, '').split('/');
  const owner = parts[0] === 'runs' || parts[0] === 'experiments' ? parts[1] : undefined;
  return `${[owner, ...parts.slice(-1)].filter(Boolean).join('-')}.torch.safetensors`;
}

async function exportAction(key: string, flags: ExportFlags): Promise<void> {
  const out = flags.out ?? defaultOut(key);
  const exported = await exportTorch(openStore(endpoints()), key, flags.model ? { model: flags.model } : {});
  const bytes = encodeSafetensors(exported.stateDict, exported.metadata);
  writeFileSync(out, bytes);
  const count = Object.keys(exported.stateDict).length;
  process.stdout.write(
    [
      `${out}: ${exported.model.name}, ${count} tensors in PyTorch layout (${bytes.length} bytes)`,
      `  load in Python: model = lth_models.build(metadata); model.load_state_dict(safetensors.torch.load_file(...))`,
      `  (bench/peer/lth_models.py; the file's metadata names the model${exported.metadata.config ? ' and its config' : ''})`,
    ].join('\n') + '\n',
  );
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      "stored weights (a run's final weights, an IMP level's weights, a checkpoint) as a PyTorch state_dict: " +
        'dense [out, in], convolutions OIHW, torch.nn names',
    )
    .argument('<key>', 'the weights object in the store, e.g. runs/<id>/final/weights.safetensors')
    .option('-o, --out <file>', 'where to write the safetensors file (default <id>-<name>.torch.safetensors)')
    .option(
      '-m, --model <name>',
      `the architecture, when the object does not say (${MODEL_NAMES.join(', ')})`,
    )
    .action(exportAction);
}
