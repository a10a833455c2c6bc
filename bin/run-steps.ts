/**
 * The scheduled client commands, `snapshot`, `run` and `prune` (config-driven, for a systemd timer or cron): the
 * options they share and the one function that runs their steps (the work lives in client/run/).
 */
import { Option } from 'commander';
import { ValidationError } from '../core/errors.ts';
import { DEFAULT_CLIENT_CONFIG, defaultLockFile } from '../client/cli-options.ts';
import type { ClientConfig, RunOptions, Step } from '../client/index.ts';
import { interruptSignal } from './interrupt.ts';
import { tokenHeaders } from './options.ts';

export interface RunFlags {
  config?: string;
  volume?: string[];
  dryRun: boolean;
  force?: boolean;
  lockFile?: string;
  /** `run` only: where its `verify:` keeps this machine's digests (--digest-cache). */
  digestCache?: string;
}

/** --config of a scheduled command: it needs the file (its volumes), so no "when it exists". */
export function runConfigOption(): Option {
  return new Option('--config <file>', `the client's config file (YAML; see deploy/client.example.yaml); default ${DEFAULT_CLIENT_CONFIG}`);
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

export function onlyVolumeOption(): Option {
  return new Option('--volume <name>', 'only this volume (repeat for more)').argParser(collect);
}

/** --lock-file; `describe`: its help, given the default lock file. */
export function lockFileOption(describe: (defaultFile: string) => string): Option {
  return new Option('--lock-file <file>', describe(defaultLockFile()));
}

async function requireConfig(file: string | undefined): Promise<ClientConfig> {
  const { findClientConfig } = await import('../client/index.ts');
  const config = await findClientConfig(file);
  if (config === null) throw new ValidationError(`no config file: give --config FILE, or write ${DEFAULT_CLIENT_CONFIG} (see deploy/client.example.yaml)`);
  return config;
}

/** The steps of `run` for the volumes of the config; the exit code is the most serious of the volumes'. */
export async function runSteps(steps: readonly Step[], flags: RunFlags, locked: boolean): Promise<void> {
  const config = await requireConfig(flags.config);
  const { clientSettings, runVolumes, textReporter } = await import('../client/index.ts');
  const settings = clientSettings({}, config);
  const needsServer = steps.includes('push') || steps.includes('prune');
  const headers = needsServer ? await tokenHeaders(settings) : {};
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
      ...(settings.encrypt !== undefined ? { encrypt: settings.encrypt } : {}),
    },
    reporter: () => textReporter(),
    ...(flags.digestCache !== undefined ? { digestCache: flags.digestCache } : {}),
  };
  const { exitCode } = await runVolumes({ server: settings.server, volumes: config.volumes, verify: config.verify }, options);
  process.exitCode = exitCode;
}
