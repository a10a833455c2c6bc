/** `snapferry client list`: the names in the server's tokens file, never the tokens. */
import type { Command } from 'commander';
import { jsonOption } from '../options.ts';

export function addClientListCommand(clients: Command): void {
  clients
    .command('list')
    .description('the names in a tokens file (never the tokens, which are not stored)')
    .requiredOption('--tokens <file>', "the server's tokens file")
    .addOption(jsonOption())
    .action(async (opts: { tokens: string; json: boolean }) => {
      const { readTokens } = await import('../../server/index.ts');
      const entries = (await readTokens(opts.tokens)).map(({ name, role, createdAt }) => ({ name, role, createdAt }));
      const text = entries.map((e) => `${e.name.padEnd(24)} ${e.role.padEnd(6)} ${e.createdAt}`).join('\n');
      process.stdout.write(opts.json ? `${JSON.stringify(entries, null, 2)}\n` : entries.length > 0 ? `${text}\n` : '');
    });
}
