/**
 * The command line: one program, `serve` for the server side, `push`, `restore`, `status` and the rest for the
 * client side. Each command is a file of bin/commands/ (its options, its parsing, its output); the options several
 * commands share are built once in bin/options.ts; the work lives behind client/index.ts and server/index.ts. Here:
 * the program, in the order its help lists the commands, and the one place a command's error becomes an exit code.
 * A command's file registers it with what its help needs (client/cli-options.ts, server/cli-options.ts) and imports
 * the work (client/index.ts, server/index.ts) in its action only: a process loads the one side it runs (issue 22).
 */
import { Command } from 'commander';
import { describeError } from '../core/errors.ts';
import { EXIT, exitCodeFor } from '../client/cli-options.ts';
import { applyConventions, exitCodeOf } from './conventions.ts';
import { endIfInterrupted, stopsOnInterrupt } from './interrupt.ts';
import { addServeCommand } from './commands/serve.ts';
import { addPushCommand } from './commands/push.ts';
import { addStatusCommand } from './commands/status.ts';
import { addSnapshotsCommand } from './commands/snapshots.ts';
import { addAbortCommand } from './commands/abort.ts';
import { addRestoreCommand } from './commands/restore.ts';
import { addVerifyCommand } from './commands/verify.ts';
import { addClientAddCommand } from './commands/client-add.ts';
import { addClientListCommand } from './commands/client-list.ts';
import { addClientRemoveCommand } from './commands/client-remove.ts';
import { addSnapshotCommand } from './commands/snapshot.ts';
import { addRunCommand } from './commands/run.ts';
import { addPruneCommand } from './commands/prune.ts';
import { addPruneServerCommand } from './commands/prune-server.ts';
import { addKeyCommands } from './commands/key-generate.ts';

const program = new Command('snapferry')
  .description('Resumable, verified replication of btrfs snapshots over HTTPS');

addServeCommand(program);
addPushCommand(program);
addStatusCommand(program);
addSnapshotsCommand(program);
addAbortCommand(program);
addRestoreCommand(program);
addVerifyCommand(program);

const clients = program.command('client').description("the server's clients and their tokens (run on the server)");
addClientAddCommand(clients);
addClientListCommand(clients);
addClientRemoveCommand(clients);

addSnapshotCommand(program);
addRunCommand(program);
addPruneCommand(program);
addPruneServerCommand(program);
addKeyCommands(program);
// The client's commands that stop on Ctrl-C (bin/interrupt.ts), each from its start.
for (const name of ['push', 'status', 'snapshots', 'abort', 'restore', 'verify', 'snapshot', 'run', 'prune']) {
  stopsOnInterrupt(program.commands.find((c) => c.name() === name)!);
}
applyConventions(program);

try {
  await program.parseAsync(process.argv);
  endIfInterrupted();
} catch (err) {
  const commanderExit = exitCodeOf(err);
  // An interrupted command's error (an AbortError, a cancelled upload) says less than that it was interrupted.
  if (!endIfInterrupted()) {
    // Commander has said its own (help, version, its usage errors).
    if (commanderExit === null) process.stderr.write(`snapferry: ${describeError(err)}\n`);
    process.exitCode = commanderExit ?? exitCodeFor(err);
  }
}
export { EXIT };
