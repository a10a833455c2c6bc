/** `snapferry prune-server`: the server's retention policies applied now, on a root no server runs on. */
import type { Command } from 'commander';
import { ValidationError } from '../../core/errors.ts';
import { DEFAULT_SERVER_CONFIG } from '../../server/cli-options.ts';
import type { RetentionLookup } from '../../server/index.ts';
import { dryRunOption } from '../options.ts';

export function addPruneServerCommand(program: Command): void {
  program
    .command('prune-server')
    .description("apply the server's retention policies now, while no server runs on the root (a running server applies them itself, after each receive and at start); with --dry-run, show what would go and why each snapshot is kept")
    .option('--config <file>', `the server's config file (its retention and volumes keys); default ${DEFAULT_SERVER_CONFIG}`)
    .option('--root <dir>', 'the server root (default: the config\'s root)')
    .addOption(dryRunOption('delete nothing: show what would be deleted, and why each snapshot is kept (works while the server runs)'))
    .action(async (flags: { config?: string; root?: string; dryRun: boolean }) => {
      const { createLogger, describeServerRetention, findServerConfig, pruneServerRoot, retentionFor } = await import('../../server/index.ts');
      const config = await findServerConfig(flags.config);
      const root = flags.root ?? config?.root;
      if (root === undefined) throw new ValidationError(`give --root DIR, or a config file with root (--config FILE, or ${DEFAULT_SERVER_CONFIG})`);
      const retention: RetentionLookup = (client, volume) => retentionFor(config, client, volume);
      if (flags.dryRun) {
        // Reads only, so it needs no lock and works beside a running server.
        const lines = await describeServerRetention(root, retention);
        process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : 'the server holds no snapshots\n');
        return;
      }
      // Refused (root_locked, exit 1) while a server holds the root: it applies the policies itself.
      const { plan, deleted } = await pruneServerRoot(root, retention, createLogger(process.env.SNAPFERRY_LOG_LEVEL ?? 'warn'));
      if (plan.length === 0) return void process.stdout.write('the server holds no snapshots\n');
      process.stdout.write(`${plan.join('\n')}\n${deleted.length > 0 ? `deleted ${deleted.length}: ${deleted.join(', ')}` : 'deleted nothing'}\n`);
    });
}
