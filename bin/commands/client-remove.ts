/**
 * `snapferry client remove NAME`: a client's token taken out of the server's tokens file; its snapshots stay. The
 * running server sees the change by itself and ends the client's uploads in progress (server/revoked-clients.ts).
 */
import type { Command } from 'commander';

export function addClientRemoveCommand(clients: Command): void {
  clients
    .command('remove')
    .description("remove a client's token; a running server refuses it from the next request on and ends its uploads in progress (its snapshots stay)")
    .argument('<name>', 'the client to remove')
    .requiredOption('--tokens <file>', "the server's tokens file")
    .action(async (name: string, opts: { tokens: string }) => {
      const { removeClient, TOKENS_LOOK_MS } = await import('../../server/index.ts');
      const entry = await removeClient(opts.tokens, name);
      // This command only edits the file: the server, another process, does the ending and counts it in its log.
      const ends =
        entry.role === 'client'
          ? `; a running server ends its uploads in progress within ${TOKENS_LOOK_MS / 1000} s (stops their receives, deletes their spools) ` +
            'and its log says how many ("client removed from the tokens file"); a stopped one, when it starts'
          : '';
      process.stderr.write(`removed ${entry.role} ${entry.name}${ends}; its snapshots stay under the server root\n`);
    });
}
