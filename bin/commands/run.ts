/** `snapferry run`: snapshot, push and prune for every configured volume, one summary line each. */
import type { Command } from 'commander';
import { digestCacheOption, dryRunOption } from '../options.ts';
import { lockFileOption, onlyVolumeOption, runConfigOption, runSteps, type RunFlags } from '../run-steps.ts';

export function addRunCommand(program: Command): void {
  program
    .command('run')
    .description('for every configured volume: a snapshot if one is due, a push of what the server lacks, and pruning of local snapshots; one summary line per volume (for a systemd timer or cron)')
    .addOption(runConfigOption())
    .addOption(onlyVolumeOption())
    .option('--force', 'take a snapshot now, whatever snapshotEvery says', false)
    .addOption(dryRunOption('take, push and delete nothing: say what would be done, and why each snapshot is kept'))
    .addOption(lockFileOption((file) => `two runs never overlap: the second exits with code 73 (default ${file})`))
    .addOption(digestCacheOption())
    .action((flags: RunFlags) => runSteps(['snapshot', 'push', 'prune'], flags, true));
}
