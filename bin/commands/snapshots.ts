/** `snapferry snapshots`: the snapshots the server holds of the client's volumes. */
import type { Command } from 'commander';
import { parseName } from '../../core/names.ts';
import { caFileOption, clientConfigOption, jsonOption, serverApi, serverOption, settingsOf, tokenFileOption } from '../options.ts';

export function addSnapshotsCommand(program: Command): void {
  program
    .command('snapshots')
    .description('the snapshots the server holds of your volumes: name, when taken, when received, size')
    .addOption(clientConfigOption('server, tokenFile, caFile'))
    .addOption(serverOption())
    .option('--volume <name>', 'only this volume')
    .addOption(jsonOption())
    .addOption(tokenFileOption())
    .addOption(caFileOption())
    .action(async (opts: { config?: string; volume?: string; json: boolean }, cmd: Command) => {
      const { findClientConfig, listSnapshots, renderSnapshots } = await import('../../client/index.ts');
      const config = await findClientConfig(opts.config);
      const api = await serverApi(await settingsOf(cmd, config));
      const rows = await listSnapshots(api, opts.volume === undefined ? undefined : parseName(opts.volume, 'volume'));
      process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${renderSnapshots(rows)}\n`);
    });
}
