/**
 * The scheduled side of the command line: `snapshot`, `run` and `prune` on the client (config-driven, for a systemd
 * timer or cron), and `prune-server` on the server. bin/cli.ts adds them to the program; the work lives in
 * client/run/run.ts, client/local/take.ts, client/run/prune.ts and server/retention.ts.
 */
import type { Command } from 'commander';
import { ValidationError } from '../core/errors.ts';
import { clientSettings, DEFAULT_CLIENT_CONFIG, findClientConfig, type ClientConfig } from '../client/config.ts';
import { textReporter } from '../client/progress/report.ts';
import { defaultLockFile } from '../client/run/lock.ts';
import { runVolumes, type RunOptions, type Step } from '../client/run/run.ts';
import { authHeaders, readToken } from '../client/http/token.ts';
import { Catalog } from '../server/catalog.ts';
import { DEFAULT_SERVER_CONFIG, findServerConfig, retentionFor } from '../server/config.ts';
import { ServerLayout } from '../server/layout.ts';
import { createLogger } from '../server/log.ts';
import { pruneServerRoot } from '../server/prune-server.ts';
import { describeServerPlans, type RetentionLookup } from '../server/retention.ts';
import { interruptSignal } from './interrupt.ts';

interface RunFlags {
  config?: string;
  volume?: string[];
  dryRun: boolean;
  force?: boolean;
  lockFile?: string;
}

const CONFIG_FLAG = `the client's config file (YAML; see deploy/client.example.yaml); default ${DEFAULT_CLIENT_CONFIG}`;

async function requireConfig(file: string | undefined): Promise<ClientConfig> {
  const config = await findClientConfig(file);
  if (config === null) throw new ValidationError(`no config file: give --config FILE, or write ${DEFAULT_CLIENT_CONFIG} (see deploy/client.example.yaml)`);
  return config;
}

/** The steps of `run` for the volumes of the config; the exit code is the most serious of the volumes'. */
async function runSteps(steps: readonly Step[], flags: RunFlags, locked: boolean): Promise<void> {
  const config = await requireConfig(flags.config);
  const settings = clientSettings({}, config);
  const needsServer = steps.includes('push') || steps.includes('prune');
  const headers = needsServer ? authHeaders(await readToken({ tokenFile: settings.tokenFile })) : {};
  const options: RunOptions = {
    steps,
    dryRun: flags.dryRun,
    force: flags.force ?? false,
    only: flags.volume ?? [],
    lockFile: locked ? (flags.lockFile ?? defaultLockFile()) : null,
    signal: interruptSignal(),
    headers,
    push: {
      compress: settings.compress,
      sendCompressed: settings.sendCompressed,
      ...(settings.retries !== undefined ? { retries: settings.retries } : {}),
      ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
      ...(settings.limitRate !== undefined ? { limitRate: settings.limitRate } : {}),
      ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
    },
    reporter: () => textReporter(),
  };
  const { exitCode } = await runVolumes({ server: settings.server, volumes: config.volumes, verify: config.verify }, options);
  process.exitCode = exitCode;
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function addRunCommands(program: Command): void {
  program
    .command('snapshot')
    .description("take a read-only snapshot of each configured volume's source, named VOLUME.YYYYMMDDTHHMMSSZ (UTC), when its newest is older than snapshotEvery")
    .option('--config <file>', CONFIG_FLAG)
    .option('--volume <name>', 'only this volume (repeat for more)', collect)
    .option('--force', 'take one now, whatever snapshotEvery says', false)
    .option('--dry-run', 'say what would be taken, take nothing', false)
    .action((flags: RunFlags) => runSteps(['snapshot'], flags, false));

  program
    .command('run')
    .description('for every configured volume: a snapshot if one is due, a push of what the server lacks, and pruning of local snapshots; one summary line per volume (for a systemd timer or cron)')
    .option('--config <file>', CONFIG_FLAG)
    .option('--volume <name>', 'only this volume (repeat for more)', collect)
    .option('--force', 'take a snapshot now, whatever snapshotEvery says', false)
    .option('--dry-run', 'take, push and delete nothing: say what would be done, and why each snapshot is kept', false)
    .option('--lock-file <file>', `two runs never overlap: the second exits with code 73 (default ${defaultLockFile()})`)
    .action((flags: RunFlags) => runSteps(['snapshot', 'push', 'prune'], flags, true));

  program
    .command('prune')
    .description("apply each configured volume's retention policy to its local snapshots; never the newest one the server also holds, nor newer ones, nor one an upload in progress needs")
    .option('--config <file>', CONFIG_FLAG)
    .option('--volume <name>', 'only this volume (repeat for more)', collect)
    .option('--dry-run', 'delete nothing: say what would be deleted, and why each snapshot is kept', false)
    .option('--lock-file <file>', `the run lock, shared with \`run\` (default ${defaultLockFile()})`)
    .action((flags: RunFlags) => runSteps(['prune'], flags, true));

  program
    .command('prune-server')
    .description("apply the server's retention policies now, while no server runs on the root (a running server applies them itself, after each receive and at start); with --dry-run, show what would go and why each snapshot is kept")
    .option('--config <file>', `the server's config file (its retention and volumes keys); default ${DEFAULT_SERVER_CONFIG}`)
    .option('--root <dir>', 'the server root (default: the config\'s root)')
    .option('--dry-run', 'delete nothing: show what would be deleted, and why each snapshot is kept (works while the server runs)', false)
    .action(async (flags: { config?: string; root?: string; dryRun: boolean }) => {
      const config = await findServerConfig(flags.config);
      const root = flags.root ?? config?.root;
      if (root === undefined) throw new ValidationError(`give --root DIR, or a config file with root (--config FILE, or ${DEFAULT_SERVER_CONFIG})`);
      const retention: RetentionLookup = (client, volume) => retentionFor(config, client, volume);
      if (flags.dryRun) {
        // Reads only: safe beside a running server, which may change the catalog under it (it then shows a moment ago).
        const catalog = await Catalog.open(new ServerLayout(root).catalog);
        const lines = describeServerPlans(catalog, retention);
        process.stdout.write(lines.length > 0 ? `${lines.join('\n')}\n` : 'the server holds no snapshots\n');
        return;
      }
      // Refused (root_locked, exit 1) while a server holds the root: it applies the policies itself.
      const { plan, deleted } = await pruneServerRoot(root, retention, createLogger(process.env.SNAPFERRY_LOG_LEVEL ?? 'warn'));
      if (plan.length === 0) return void process.stdout.write('the server holds no snapshots\n');
      process.stdout.write(`${plan.join('\n')}\n${deleted.length > 0 ? `deleted ${deleted.length}: ${deleted.join(', ')}` : 'deleted nothing'}\n`);
    });
}
