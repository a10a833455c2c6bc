/** `snapferry abort ID`: a transfer that is not being received thrown away, or a failed one's spool deleted. */
import type { Command } from 'commander';
import { caFileOption, clientConfigOption, serverApi, serverOption, settingsOf, tokenFileOption } from '../options.ts';

export function addAbortCommand(program: Command): void {
  program
    .command('abort')
    .description("throw away a transfer that is not being received (an upload, or a stream waiting for its receive), or delete the spool a failed one keeps on the server")
    .addOption(clientConfigOption('server, tokenFile, caFile'))
    .addOption(serverOption())
    .addOption(tokenFileOption())
    .addOption(caFileOption())
    .argument('<id>', 'the transfer, by its id or the first digits of it that `snapferry status` shows')
    .action(async (id: string, opts: { config?: string }, cmd: Command) => {
      const { abortTransfer, findClientConfig } = await import('../../client/index.ts');
      const config = await findClientConfig(opts.config);
      const api = await serverApi(await settingsOf(cmd, config));
      process.stderr.write(`${await abortTransfer(api, id)}\n`);
    });
}
