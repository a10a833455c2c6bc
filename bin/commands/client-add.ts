/** `snapferry client add NAME`: a client (or a read-only admin) in the server's tokens file, its token printed once. */
import fs from 'node:fs';
import type { Command } from 'commander';
import { TOKEN_ENV } from '../../client/cli-options.ts';

export function addClientAddCommand(clients: Command): void {
  clients
    .command('add')
    .description('add a client (or, with --admin, a read-only admin) and print its token, once, on stdout (or into --token-file)')
    .argument('<name>', "the client's name: its volumes live under ROOT/volumes/NAME/")
    .requiredOption('--tokens <file>', "the server's tokens file (created if missing, mode 0600, with its folder)")
    .option('--token-file <file>', 'write the token into this new file (mode 0600) instead of stdout')
    .option('--admin', "a token that reads every client's volumes and transfers and changes nothing", false)
    .action(async (name: string, opts: { tokens: string; tokenFile?: string; admin: boolean }) => {
      const { addClient, checkTokenStdout, openTokenFile } = await import('../../server/index.ts');
      // Where the token goes is checked before the client exists: a token nobody can keep safely is no use.
      const out = opts.tokenFile === undefined ? (checkTokenStdout(), 1) : openTokenFile(opts.tokenFile);
      let added: Awaited<ReturnType<typeof addClient>>;
      try {
        added = await addClient(opts.tokens, name, opts.admin ? 'admin' : 'client');
      } catch (err) {
        if (opts.tokenFile !== undefined) fs.rmSync(opts.tokenFile, { force: true });
        throw err;
      }
      fs.writeSync(out, `${added.token}\n`);
      if (opts.tokenFile !== undefined) fs.closeSync(out);
      const where = opts.tokenFile === undefined ? 'above' : `in ${opts.tokenFile} (mode 0600)`;
      process.stderr.write(
        `added ${added.entry.role} ${added.entry.name}; its token is ${where} and is not stored anywhere else: put it in a file (mode 0600) on the ` +
          `client and pass --token-file FILE, or set ${TOKEN_ENV}. A running server accepts it at once.\n`,
      );
    });
}
