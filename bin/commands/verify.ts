/** `snapferry verify`: the server's copy of a snapshot proved equal to the local one, by digests only. */
import type { Command } from 'commander';
import { interruptSignal } from '../interrupt.ts';
import { caFileOption, clientConfigOption, digestCacheOption, jsonOption, serverOption, settingsOf, tokenFileOption, tokenHeaders } from '../options.ts';

interface VerifyFlags {
  config?: string;
  volume?: string;
  readData: boolean;
  client?: string;
  json: boolean;
  digestCache: string;
}

export function addVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description("prove that the server's copy of a snapshot equals the local read-only snapshot: both sides digest their tree and only digests cross the line, down to the paths that differ (exit 3 when any differs)")
    .addOption(clientConfigOption('server, tokenFile, caFile, volumes'))
    .addOption(serverOption())
    .option('--volume <name>', 'the volume on the server (with a config and no snapshots: only this volume)')
    .option('--read-data', 'both sides read every byte again instead of starting from their saved digests (bit rot that a scrub has not reported)', false)
    .option('--client <name>', 'with an admin token: the client whose snapshots to verify')
    .addOption(jsonOption('JSON lines of progress and results on stdout'))
    .addOption(digestCacheOption())
    .addOption(tokenFileOption())
    .addOption(caFileOption())
    .argument('[snapshot...]', "read-only snapshots (each is checked), or folders of them (the newest the server holds is); default: each configured volume's snapshotDir")
    .action(async (snapshots: string[], opts: VerifyFlags, cmd: Command) => {
      const { findClientConfig, jsonView, pushJobs, textView, verify } = await import('../../client/index.ts');
      const config = await findClientConfig(opts.config);
      const settings = await settingsOf(cmd, config);
      await verify(
        {
          server: settings.server, volumes: pushJobs(snapshots, opts.volume, config), readData: opts.readData, signal: interruptSignal(), digestCache: opts.digestCache,
          headers: await tokenHeaders(settings),
          ...(opts.client !== undefined ? { client: opts.client } : {}),
          ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
          ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
        },
        opts.json ? jsonView() : textView(),
      );
    });
}
