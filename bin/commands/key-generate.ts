/**
 * `snapferry key generate PATH`: a new sealing key file for client-side encryption (`encrypt: PATH` in the client's
 * config). The file is the only way back to what is sealed under it, so the command never replaces one and says
 * where a copy must go; its errors (key_file_*) get their exit code where every other error does (client/exit-codes.ts).
 */
import type { Command } from 'commander';
import path from 'node:path';
import { generateKeyFile } from '../../core/crypto/key-file.ts';

export function addKeyCommands(program: Command): void {
  const key = program.command('key').description('client-side encryption keys (encrypt: in the client config)');
  key
    .command('generate')
    .description('write a new sealing key file (mode 0600); never replaces an existing file')
    .argument('<path>', 'where to write the key file, e.g. /etc/snapferry/archive.key')
    .action(async (file: string) => {
      const absolute = path.resolve(file);
      const sealKey = await generateKeyFile(absolute);
      process.stdout.write(`${sealKey.id.toString('hex')}\n`);
      process.stderr.write(
        `wrote key ${sealKey.id.toString('hex')} to ${absolute} (mode 0600). Set encrypt: ${absolute} in the client config to seal pushes with it.\n` +
          'Keep a copy of this file apart from the backups (another machine, a password manager, or on paper): ' +
          'without it nothing sealed under it can be restored, and the server cannot help, it never sees the key.\n',
      );
    });
}
