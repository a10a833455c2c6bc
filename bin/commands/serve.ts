/** `snapferry serve`: the server, until SIGINT or SIGTERM. */
import { Option, type Command } from 'commander';
import { parseDuration } from '../../core/units.ts';
import { DEFAULT_SERVER_CONFIG, parseListenAddress, PRIVILEGED_FILES_MODES } from '../../server/cli-options.ts';
import type { ServeFlags } from '../../server/index.ts';
import { asArgument, givenOptions, parseTimeout } from '../options.ts';

const parseListen = asArgument(parseListenAddress);

/** serve --expire-after: a duration, or 0 for never. */
function parseExpireAfter(value: string): number {
  return value.trim() === '0' ? 0 : parseDuration(value);
}

export function addServeCommand(program: Command): void {
  program
    .command('serve')
    .description('run the server: receive pushed snapshots into --root (a folder on btrfs), or keep them in an S3 bucket (store: in the config file)')
    .option('--config <file>', `the server's config file (YAML; see deploy/server.example.yaml); without --config, ${DEFAULT_SERVER_CONFIG} when it exists. Flags override its keys`)
    .option('--root <dir>', 'server root on btrfs: spool, catalog and received snapshots live here (config: root)')
    .addOption(new Option('--listen <host:port>', 'address to listen on').argParser(parseListen).default({ host: '127.0.0.1', port: 8080 }, '127.0.0.1:8080'))
    .option('--behind-proxy', 'trust X-Forwarded-Proto/Host from the reverse proxy (nginx overwrites them)', false)
    .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate chain (with --tls-key; not needed behind nginx)')
    .option('--tls-key <file>', 'the PEM private key of --tls-cert')
    .option('--tokens <file>', 'require a client token from this file on every request (see `snapferry client add`)')
    .option('--no-auth', 'accept every request as the one client "default" (loopback addresses only)')
    .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
    .addOption(
      new Option('--privileged-files <mode>', "device nodes and setuid files in received streams: allow (warns unless the volumes' mount is nosuid,nodev), inert-mount (refuse to start unless it is), refuse (fail such streams)")
        .choices(PRIVILEGED_FILES_MODES),
    )
    .option('--expire-after <duration>', 'delete an unfinished upload that got no request for this long, e.g. 7d or 36h; 0: never (default 7d; config: expireAfter)', asArgument(parseExpireAfter))
    .option('--idle-timeout <duration>', "end an upload's request whose body brought no byte for this long (its verified frames are kept and the upload is free for the client's next try; default 60s; config: idleTimeout)", parseTimeout)
    .action(async (_opts: unknown, cmd: Command) => {
      // The server's work is loaded here, when serve runs: the program's start loads only the options' parsers.
      const {
        createLogger, findServerConfig, logCrashes, retentionFor, serveSettings, startArchiveServer, startProcessMetrics, startServer, storeLabel, storeSettings,
      } = await import('../../server/index.ts');
      const config = await findServerConfig(cmd.opts<{ config?: string }>().config);
      const { expireAfter, idleTimeout, ...flags } = givenOptions<ServeFlags & { expireAfter?: number; idleTimeout?: number }>(cmd);
      const settings = serveSettings(
        { ...flags, ...(expireAfter !== undefined ? { expireAfterMs: expireAfter } : {}), ...(idleTimeout !== undefined ? { idleTimeoutMs: idleTimeout } : {}) },
        config,
      );
      const log = createLogger(settings.logLevel);
      // An archive's keys are read before anything starts: missing or open to others, serve stops with nothing to close.
      const mode = settings.store === null
        ? { label: settings.options.root, start: () => startServer({ ...settings.options, log, retention: (client, volume) => retentionFor(config, client, volume) }) }
        : await storeSettings(settings.store).then((store) => ({ label: storeLabel(store), start: () => startArchiveServer({
          ...settings.options, log, store, chains: settings.chains, retention: (client, volume) => retentionFor(config, client, volume),
          ...(settings.limits ? { limits: settings.limits } : {}),
          ...(settings.keepEndedMs !== undefined ? { keepEndedMs: settings.keepEndedMs } : {}),
        }) }));
      startProcessMetrics();
      const crashes = logCrashes(log);
      const server = await mode.start().catch((err: unknown) => {
        // Said below as `snapferry: why` with its exit code: not a death to report.
        crashes.stopping('could not start');
        throw err;
      });
      let stopping = false;
      const stop = (signal: NodeJS.Signals) => {
        // A second signal while the uploads' requests end changes nothing (systemd sends SIGKILL after its timeout).
        if (stopping) return;
        stopping = true;
        crashes.stopping(signal);
        void server.close().then(() => process.exit(0));
      };
      // `on`, not `once`: signal-exit (proper-lockfile, execa, loaded once an upload runs) kills the process with the
      // signal again when no other listener is left, before the server has closed and logged `stopped`.
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
      // Said only once a stop is handled: a supervisor (or a test) that reads this line and at once sends SIGTERM
      // must find the handler in place, not Node's default, which kills without closing (seen under load).
      process.stderr.write(`snapferry serving ${mode.label} on ${server.url}\n`);
    });
}
