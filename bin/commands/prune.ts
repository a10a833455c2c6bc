/** `snapferry prune`: each configured volume's retention policy applied to its local snapshots. */
import type { Command } from 'commander';
import { dryRunOption } from '../options.ts';
import { lockFileOption, onlyVolumeOption, runConfigOption, runSteps, type RunFlags } from '../run-steps.ts';

export function addPruneCommand(program: Command): void {
  program
    .command('prune')
    .description("apply each configured volume's retention policy to its local snapshots; never the newest one the server also holds, nor newer ones, nor one an upload in progress needs")
    .addOption(runConfigOption())
    .addOption(onlyVolumeOption())
    .addOption(dryRunOption('delete nothing: say what would be deleted, and why each snapshot is kept'))
    .addOption(lockFileOption((file) => `the run lock, shared with \`run\` (default ${file})`))
    .action((flags: RunFlags) => runSteps(['prune'], flags, true));
}
