/** `snapferry snapshot`: a read-only snapshot of each configured volume whose newest is older than snapshotEvery. */
import type { Command } from 'commander';
import { dryRunOption } from '../options.ts';
import { onlyVolumeOption, runConfigOption, runSteps, type RunFlags } from '../run-steps.ts';

export function addSnapshotCommand(program: Command): void {
  program
    .command('snapshot')
    .description("take a read-only snapshot of each configured volume's source, named VOLUME.YYYYMMDDTHHMMSSZ (UTC), when its newest is older than snapshotEvery")
    .addOption(runConfigOption())
    .addOption(onlyVolumeOption())
    .option('--force', 'take one now, whatever snapshotEvery says', false)
    .addOption(dryRunOption('say what would be taken, take nothing'))
    .action((flags: RunFlags) => runSteps(['snapshot'], flags, false));
}
