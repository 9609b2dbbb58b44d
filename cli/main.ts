// Entry point of the `lth` command. Each subcommand lives in cli/commands/ and registers itself here.
import { Command } from 'commander';

import { registerAnalyzeCommand } from './commands/analyze';
import { registerBranchCommand } from './commands/branch';
import { registerControlCommands } from './commands/control';
import { registerDemoCommand } from './commands/demo';
import { registerDistillCommand } from './commands/distill';
import { registerExportCommand } from './commands/export';
import { registerFsckCommand } from './commands/fsck';
import { registerLotteryCommand } from './commands/lottery';
import { registerReportCommand } from './commands/report';
import { registerStackCommands } from './commands/stack';
import { registerStatusCommand } from './commands/status';
import { registerScheduleCommand } from './commands/schedule';
import { registerSweepCommand } from './commands/sweep';
import { registerTeachersCommand } from './commands/teachers';
import { registerTrainCommand } from './commands/train';
import { registerWorkerCommand } from './commands/worker';
import { cliErrorText } from './failure-text';

export function buildProgram(): Command {
  const program = new Command('lth')
    .description('Lottery-ticket and distillation experiments as durable Temporal workflows')
    .showHelpAfterError();
  registerStackCommands(program);
  registerStatusCommand(program);
  registerWorkerCommand(program);
  registerTrainCommand(program);
  registerLotteryCommand(program);
  registerBranchCommand(program);
  registerReportCommand(program);
  registerAnalyzeCommand(program);
  registerSweepCommand(program);
  registerScheduleCommand(program);
  registerControlCommands(program);
  registerTeachersCommand(program);
  registerDistillCommand(program);
  registerExportCommand(program);
  registerFsckCommand(program);
  registerDemoCommand(program);
  return program;
}

buildProgram()
  .parseAsync(process.argv)
  .catch((err: unknown) => {
    // A failed workflow: its whole cause chain and what to do next, not just "Workflow execution failed".
    process.stderr.write(cliErrorText(err));
    process.exit(1);
  });
