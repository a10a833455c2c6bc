/** `snapferry restore SNAPSHOT DEST_DIR`: a snapshot brought back from the server, resumable, checked at the end. */
import type { Command } from 'commander';
import { interruptSignal } from '../interrupt.ts';
import {
  caFileOption, chunkSizeOption, clientConfigOption, jsonOption, retriesOption, serverOption, settingsOf, stallTimeoutOption, tokenFileOption, tokenHeaders,
} from '../options.ts';

interface RestoreFlags {
  config?: string;
  volume: string;
  parentDir?: string;
  client?: string;
  chunkSize?: number;
  json: boolean;
  verify: boolean;
}

export function addRestoreCommand(program: Command): void {
  program
    .command('restore')
    .description('bring a snapshot back from the server into DEST_DIR (btrfs), incremental from the newest snapshot both sides hold; resumes after a cut or a crash')
    .addOption(clientConfigOption('server, tokenFile, caFile, retries, encrypt'))
    .addOption(serverOption())
    .requiredOption('--volume <name>', 'the volume the snapshot belongs to on the server')
    .option('--parent-dir <dir>', 'look for a parent snapshot here instead of in DEST_DIR (same filesystem)')
    .option('--client <name>', "with an admin token: the client whose snapshot to restore")
    .addOption(chunkSizeOption())
    .addOption(retriesOption())
    .addOption(stallTimeoutOption('drop a download on which nothing moved for this long, and resume on a new connection (default 30s; config: stallTimeout)'))
    .addOption(jsonOption('JSON lines of progress events on stdout'))
    .option('--no-verify', "skip the last step: the restored snapshot checked against the server's digest of its copy (exit 3 when it differs)")
    .addOption(tokenFileOption(true))
    .addOption(caFileOption())
    .argument('<snapshot>', "the snapshot's name on the server (`snapferry snapshots` lists them)")
    .argument('<dest-dir>', 'a folder on btrfs; the snapshot is received into it under its name')
    .action(async (snapshot: string, destDir: string, opts: RestoreFlags, cmd: Command) => {
      const { describeRestored, findClientConfig, jsonReporter, restore, textReporter } = await import('../../client/index.ts');
      const settings = await settingsOf(cmd, await findClientConfig(opts.config));
      const headers = await tokenHeaders(settings);
      const report = opts.json ? jsonReporter() : textReporter();
      const result = await restore(
        {
          server: settings.server, volume: opts.volume, snapshot, destDir, headers, signal: interruptSignal(), verify: opts.verify,
          ...(opts.parentDir !== undefined ? { parentDir: opts.parentDir } : {}),
          ...(opts.client !== undefined ? { client: opts.client } : {}),
          ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
          ...(settings.retries !== undefined ? { retries: settings.retries } : {}),
          ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
          ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
          ...(settings.encrypt !== undefined ? { encrypt: settings.encrypt } : {}),
        },
        report,
      ).finally(() => report.close?.());
      process.stderr.write(`${describeRestored(result)}\n`);
    });
}
