/** `snapferry push`: a volume's snapshots the server lacks, sent and received; with a config, volume after volume. */
import { InvalidArgumentError, type Command } from 'commander';
import { describeError } from '../../core/errors.ts';
import { sendCompressedModes, type SendCompressedMode } from '../../core/btrfs/send-compressed.ts';
import { exitCodeFor, MIN_LIMIT_RATE, MIN_LIMIT_RATE_WHY, parseCompressSetting, type CompressSetting } from '../../client/cli-options.ts';
import { interruptSignal } from '../interrupt.ts';
import {
  caFileOption, chunkSizeOption, clientConfigOption, dryRunOption, jsonOption, parseSize, retriesOption, serverOption, settingsOf, stallTimeoutOption,
  tokenFileOption, tokenHeaders,
} from '../options.ts';

function parseLimitRate(value: string): number {
  const n = parseSize(value.replace(/\/s$/i, ''));
  if (n < MIN_LIMIT_RATE) throw new InvalidArgumentError(`expected at least 1k (${MIN_LIMIT_RATE} bytes per second): ${MIN_LIMIT_RATE_WHY}`);
  return n;
}

function parseSendCompressed(value: string): SendCompressedMode {
  const mode = sendCompressedModes.find((m) => m === value);
  if (mode === undefined) throw new InvalidArgumentError(`expected one of ${sendCompressedModes.join(', ')}`);
  return mode;
}

function parseCompress(value: string): CompressSetting {
  try {
    return parseCompressSetting(value);
  } catch (err) {
    throw new InvalidArgumentError((err as Error).message);
  }
}

export function addPushCommand(program: Command): void {
  program
    .command('push')
    .description("send a volume's snapshots the server lacks (full or incremental), and wait until it has received them; with a config file and no snapshots, every configured volume's snapshotDir (or --volume's)")
    .addOption(clientConfigOption())
    .addOption(serverOption('the snapferry server, e.g. https://backup.example.net'))
    .option('--volume <name>', 'the volume these snapshots belong to (a name on the server)')
    .addOption(chunkSizeOption())
    .option('--compress <level>', 'auto (the highest zstd level that stays ahead of the link), none, or a zstd level 1..19', parseCompress, 'auto' as CompressSetting)
    .addOption(retriesOption())
    .addOption(stallTimeoutOption('drop a connection on which nothing moved and no answer came for this long, and resume on a new one (default 30s; config: stallTimeout)'))
    .option('--limit-rate <rate>', 'upload at most this many bytes per second, e.g. 200k or 1M, at least 1k (keeps the line usable)', parseLimitRate)
    .option('--send-compressed <mode>', 'btrfs send --proto 2 --compressed-data: auto (when the snapshots\' filesystem is mounted with compression and both ends can), on, off', parseSendCompressed, 'auto')
    .addOption(jsonOption('JSON lines of progress events on stdout'))
    .addOption(dryRunOption('send nothing: print which snapshots would be sent, from which parent, and their estimated size'))
    .addOption(tokenFileOption(true))
    .addOption(caFileOption())
    .argument('[snapshot...]', 'read-only snapshots, or folders holding them (btrbk, snapper layouts)')
    .action(async (snapshots: string[], _opts: unknown, cmd: Command) => {
      const opts = cmd.opts<{ config?: string; volume?: string; chunkSize?: number; json: boolean; dryRun: boolean }>();
      const { describePlanned, findClientConfig, jsonReporter, push, pushJobs, textReporter } = await import('../../client/index.ts');
      const config = await findClientConfig(opts.config);
      const jobs = pushJobs(snapshots, opts.volume, config);
      const settings = await settingsOf(cmd, config);
      const headers = await tokenHeaders(settings);
      const signal = interruptSignal();
      // Volume after volume; one that fails does not stop the others, and the first failure sets the exit code.
      for (const job of jobs) {
        const prefix = jobs.length > 1 ? `${job.volume}: ` : '';
        const report = opts.json ? jsonReporter() : textReporter();
        try {
          const result = await push(
            {
              server: settings.server, volume: job.volume, snapshots: job.snapshots, snapshotDir: job.snapshotDir === true, compress: settings.compress, signal, headers, dryRun: opts.dryRun,
              sendCompressed: settings.sendCompressed,
              ...(opts.chunkSize !== undefined ? { chunkSize: opts.chunkSize } : {}),
              ...(settings.retries !== undefined ? { retries: settings.retries } : {}),
              ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
              ...(settings.limitRate !== undefined ? { limitRate: settings.limitRate } : {}),
              ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
              ...(settings.encrypt !== undefined ? { encrypt: settings.encrypt } : {}),
            },
            report,
          ).finally(() => report.close?.());
          if (result.planned !== undefined) {
            process.stdout.write(opts.json ? `${JSON.stringify({ event: 'plan', at: new Date().toISOString(), volume: job.volume, planned: result.planned, present: result.present })}\n` : describePlanned(prefix, result.planned));
            continue;
          }
          // The server's names, which restore takes: a snapshot renamed here after its upload began keeps the old one there.
          const sent = result.sent.map((s) => (s.transfer.snapshot === s.snapshot ? s.snapshot : `${s.transfer.snapshot}, renamed here to ${s.snapshot} since`));
          process.stderr.write(
            sent.length > 0 ? `${prefix}done: ${sent.length} snapshot(s) received by the server (${sent.join(', ')})\n` : `${prefix}done: the server already holds everything\n`,
          );
        } catch (err) {
          if (jobs.length === 1 || signal.aborted) throw err;
          process.stderr.write(`snapferry: ${prefix}${describeError(err)}\n`);
          process.exitCode ??= exitCodeFor(err);
        }
      }
    });
}
