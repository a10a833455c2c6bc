/** `snapferry status`: what the server holds and what is in flight, beside this machine's newest snapshots. */
import { statSync } from 'node:fs';
import { InvalidArgumentError, type Command } from 'commander';
import { parseName } from '../../core/names.ts';
import { asArgument, caFileOption, clientConfigOption, jsonOption, serverApi, serverOption, settingsOf, tokenFileOption } from '../options.ts';

/** --snapshots-dir VOLUME=DIR, repeated: volume -> folder. */
function collectSnapshotDir(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const m = /^([^=]+)=(.+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected VOLUME=DIR, e.g. home=/snapshots/home');
  // A folder named on the command line is one the user means to exist: a mistyped one showed its volume as having
  // no snapshot. (A config's snapshotDir may not exist yet: the first snapshot makes it, and status shows why.)
  const stat = statSync(m[2]!, { throwIfNoEntry: false });
  if (stat === undefined) throw new InvalidArgumentError(`the folder ${m[2]!} does not exist: give the folder that holds this machine's snapshots of ${m[1]!}`);
  if (!stat.isDirectory()) throw new InvalidArgumentError(`${m[2]!} is not a folder: give the folder that holds this machine's snapshots of ${m[1]!}`);
  return { ...previous, [asArgument((v: string) => parseName(v, 'volume'))(m[1]!)]: m[2]! };
}

export function addStatusCommand(program: Command): void {
  program
    .command('status')
    .description('what the server holds and what is in flight')
    .addOption(clientConfigOption('server, tokenFile, caFile'))
    .addOption(serverOption())
    .addOption(jsonOption())
    .addOption(tokenFileOption())
    .addOption(caFileOption())
    .option('--snapshots-dir <volume=dir>', "this machine's snapshots of VOLUME are in DIR: show the newest and how many the server lacks (repeatable; default: the config file's snapshotDir of each volume)", collectSnapshotDir)
    .action(async (opts: { json: boolean; config?: string; snapshotsDir?: Record<string, string> }, cmd: Command) => {
      const { findClientConfig, gatherStatus, renderStatus } = await import('../../client/index.ts');
      const config = await findClientConfig(opts.config);
      const settings = await settingsOf(cmd, config);
      const api = await serverApi(settings);
      const configured = Object.fromEntries(Object.entries(config?.volumes ?? {}).map(([name, v]) => [name, v.snapshotDir]));
      const report = await gatherStatus(api, settings.server, { ...configured, ...opts.snapshotsDir }, { note: (m) => process.stderr.write(`snapferry: ${m}\n`) });
      process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderStatus(report)}\n`);
    });
}
