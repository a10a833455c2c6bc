/** `snapferry client remove NAME`: a client's token taken out of the server's tokens file; its data stays. */
import type { Command } from 'commander';

export function addClientRemoveCommand(clients: Command): void {
  clients
    .command('remove')
    .description("remove a client's token; a running server refuses it from the next request on (its data stays)")
    .argument('<name>', 'the client to remove')
    .requiredOption('--tokens <file>', "the server's tokens file")
    .action(async (name: string, opts: { tokens: string }) => {
      const { removeClient } = await import('../../server/index.ts');
      const entry = await removeClient(opts.tokens, name);
      process.stderr.write(`removed ${entry.role} ${entry.name}; its snapshots stay under the server root\n`);
    });
}
