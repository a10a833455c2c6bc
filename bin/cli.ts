/**
 * The command line: one program, `serve` for the server side, `push` and `status` for the client side. Parsing and
 * exit codes live here; the work lives in server/ and client/.
 */
import fs from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { describeError } from '../core/errors.ts';
import { push } from '../client/push/push.ts';
import { ServerApi } from '../client/http/api.ts';
import { createTransport } from '../client/http/transport.ts';
import { formatBytes, jsonReporter, textReporter } from '../client/progress/report.ts';
import { restore } from '../client/restore/restore.ts';
import { renderStatus } from '../client/status/view.ts';
import { gatherStatus } from '../client/status/data.ts';
import { EXIT, exitCodeFor } from '../client/exit-codes.ts';
import { abortTransfer } from '../client/status/abort.ts';
import { listSnapshots, renderSnapshots } from '../client/status/snapshots.ts';
import { describePlanned } from '../client/push/plan-view.ts';
import { startServer } from '../server/serve.ts';
import { createLogger } from '../server/log.ts';
import { startProcessMetrics } from '../server/metrics.ts';
import { logCrashes } from '../server/crash-log.ts';
import { addClient, readTokens, removeClient } from '../server/tokens.ts';
import { checkTokenStdout, openTokenFile } from '../server/token-output.ts';
import { authHeaders, readToken, TOKEN_ENV } from '../client/http/token.ts';
import { parseCompressSetting, type CompressSetting } from '../client/push/compression.ts';
import { MIN_LIMIT_RATE, MIN_LIMIT_RATE_WHY } from '../client/upload/rate-limit.ts';
import { sendCompressedModes, type SendCompressedMode } from '../core/btrfs/features.ts';
import { parseDuration, parseSize as parseSizeText } from '../core/units.ts';
import { parseName } from '../core/names.ts';
import { DEFAULT_SERVER_CONFIG, findServerConfig, parseListenAddress, PRIVILEGED_FILES_MODES, retentionFor, serveSettings, type ServeFlags } from '../server/config.ts';
import { clientSettings, DEFAULT_CLIENT_CONFIG, findClientConfig, pushJobs, type ClientFlags } from '../client/config.ts';
import { addRunCommands } from './cli-run.ts';
import { applyConventions, exitCodeOf } from './conventions.ts';
import { endIfInterrupted, interruptSignal } from './interrupt.ts';
import { verify } from '../client/verify/verify.ts';
import { jsonView, textView } from '../client/verify/view.ts';
import { defaultDigestCache } from '../client/verify/local-digests.ts';

/** A parser of core/ or server/ as a commander argument parser: its message in commander's words. */
function asArgument<T>(parse: (value: string) => T): (value: string) => T {
  return (value) => {
    try {
      return parse(value);
    } catch (err) {
      throw new InvalidArgumentError(describeError(err));
    }
  };
}

const parseListen = asArgument(parseListenAddress);
const parseSize = asArgument(parseSizeText);

/**
 * The options a person typed (or set in the environment), without commander's defaults: a default must not
 * override the config file's key, a typed flag must.
 */
function givenOptions<T>(cmd: Command): Partial<T> {
  const given = Object.entries(cmd.opts()).filter(([key]) => ['cli', 'env'].includes(cmd.getOptionValueSource(key) ?? ''));
  return Object.fromEntries(given) as Partial<T>;
}

function parseLimitRate(value: string): number {
  const n = parseSize(value.replace(/\/s$/i, ''));
  if (n < MIN_LIMIT_RATE) throw new InvalidArgumentError(`expected at least 1k (${MIN_LIMIT_RATE} bytes per second): ${MIN_LIMIT_RATE_WHY}`);
  return n;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number >= 0');
  return n;
}

/** --snapshots-dir VOLUME=DIR, repeated: volume -> folder. */
function collectSnapshotDir(value: string, previous: Record<string, string> | undefined): Record<string, string> {
  const m = /^([^=]+)=(.+)$/.exec(value);
  if (!m) throw new InvalidArgumentError('expected VOLUME=DIR, e.g. home=/snapshots/home');
  return { ...previous, [asArgument((v: string) => parseName(v, 'volume'))(m[1]!)]: m[2]! };
}

/** --stall-timeout, --idle-timeout: a duration of at least a second (a shorter one would fire on any healthy line). */
function parseStallTimeout(value: string): number {
  const ms = parseDuration(value);
  if (ms < 1000) throw new InvalidArgumentError('expected a duration of at least 1s, like 30s or 2m');
  return ms;
}

/** serve --expire-after: a duration, or 0 for never. */
function parseExpireAfter(value: string): number {
  return value.trim() === '0' ? 0 : parseDuration(value);
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

const program = new Command('snapferry')
  .description('Resumable, verified replication of btrfs snapshots over HTTPS');

program
  .command('serve')
  .description('run the server: receive pushed snapshots into --root (a folder on btrfs)')
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
  .option('--idle-timeout <duration>', "end an upload's request whose body brought no byte for this long (its verified frames are kept and the upload is free for the client's next try; default 60s; config: idleTimeout)", asArgument(parseStallTimeout))
  .action(async (_opts: unknown, cmd: Command) => {
    const config = await findServerConfig(cmd.opts<{ config?: string }>().config);
    const { expireAfter, idleTimeout, ...flags } = givenOptions<ServeFlags & { expireAfter?: number; idleTimeout?: number }>(cmd);
    const { logLevel, options } = serveSettings(
      { ...flags, ...(expireAfter !== undefined ? { expireAfterMs: expireAfter } : {}), ...(idleTimeout !== undefined ? { idleTimeoutMs: idleTimeout } : {}) },
      config,
    );
    startProcessMetrics();
    const log = createLogger(logLevel);
    const crashes = logCrashes(log);
    const server = await startServer({ ...options, log, retention: (client, volume) => retentionFor(config, client, volume) }).catch((err: unknown) => {
      // Said below as `snapferry: why` with its exit code: not a death to report.
      crashes.stopping('could not start');
      throw err;
    });
    process.stderr.write(`snapferry serving ${options.root} on ${server.url}\n`);
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
  });

program
  .command('push')
  .description("send a volume's snapshots the server lacks (full or incremental), and wait until it has received them; with a config file and no snapshots, every configured volume's snapshotDir (or --volume's)")
  .option('--config <file>', `the client's config file (YAML; see deploy/client.example.yaml); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists. Flags override its keys`)
  .option('--server <url>', 'the snapferry server, e.g. https://backup.example.net')
  .option('--volume <name>', 'the volume these snapshots belong to (a name on the server)')
  .option('--chunk-size <size>', 'raw bytes per frame (64K..16M)', parseSize)
  .option('--compress <level>', 'auto (the highest zstd level that stays ahead of the link), none, or a zstd level 1..19', parseCompress, 'auto' as CompressSetting)
  .option('--retries <n>', 'retries in a row without progress before giving up (default: forever)', parseCount)
  .option('--stall-timeout <duration>', 'drop a connection on which nothing moved and no answer came for this long, and resume on a new one (default 30s; config: stallTimeout)', asArgument(parseStallTimeout))
  .option('--limit-rate <rate>', 'upload at most this many bytes per second, e.g. 200k or 1M, at least 1k (keeps the line usable)', parseLimitRate)
  .option('--send-compressed <mode>', 'btrfs send --proto 2 --compressed-data: auto (when the snapshots\' filesystem is mounted with compression and both ends can), on, off', parseSendCompressed, 'auto')
  .option('--json', 'JSON lines of progress events on stdout', false)
  .option('--dry-run', 'send nothing: print which snapshots would be sent, from which parent, and their estimated size', false)
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV}); never pass a token itself as an argument`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .argument('[snapshot...]', 'read-only snapshots, or folders holding them (btrbk, snapper layouts)')
  .action(async (snapshots: string[], _opts: unknown, cmd: Command) => {
    const opts = cmd.opts<{ config?: string; volume?: string; chunkSize?: number; json: boolean; dryRun: boolean }>();
    const config = await findClientConfig(opts.config);
    const jobs = pushJobs(snapshots, opts.volume, config);
    const settings = clientSettings(givenOptions<ClientFlags>(cmd), config);
    const headers = authHeaders(await readToken({ tokenFile: settings.tokenFile }));
    const signal = interruptSignal();
    // Volume after volume; one that fails does not stop the others, and the first failure sets the exit code.
    for (const job of jobs) {
      const prefix = jobs.length > 1 ? `${job.volume}: ` : '';
      const report = opts.json ? jsonReporter() : textReporter();
      try {
        const result = await push(
          {
            server: settings.server, volume: job.volume, snapshots: job.snapshots, compress: settings.compress, signal, headers, dryRun: opts.dryRun,
            sendCompressed: settings.sendCompressed,
            ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
            ...(settings.retries !== undefined ? { retries: settings.retries } : {}),
            ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
            ...(settings.limitRate !== undefined ? { limitRate: settings.limitRate } : {}),
            ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
          },
          report,
        ).finally(() => report.close?.());
        if (result.planned !== undefined) {
          process.stdout.write(opts.json ? `${JSON.stringify({ event: 'plan', at: new Date().toISOString(), volume: job.volume, planned: result.planned, present: result.present })}\n` : describePlanned(prefix, result.planned));
          continue;
        }
        const sent = result.sent.map((s) => s.snapshot);
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

program
  .command('status')
  .description('what the server holds and what is in flight')
  .option('--config <file>', `the client's config file (server, tokenFile, caFile); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists`)
  .option('--server <url>', 'the snapferry server')
  .option('--json', 'print JSON', false)
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV})`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .option('--snapshots-dir <volume=dir>', "this machine's snapshots of VOLUME are in DIR: show the newest and how many the server lacks (repeatable; default: the config file's snapshotDir of each volume)", collectSnapshotDir)
  .action(async (opts: { json: boolean; config?: string; snapshotsDir?: Record<string, string> }, cmd: Command) => {
    const config = await findClientConfig(opts.config);
    const settings = clientSettings(givenOptions<ClientFlags>(cmd), config);
    const transport = createTransport(settings.server, settings.caFile !== undefined ? { caFile: settings.caFile } : {});
    const api = new ServerApi({ server: settings.server, transport, signal: interruptSignal(), headers: authHeaders(await readToken({ tokenFile: settings.tokenFile })) });
    const configured = Object.fromEntries(Object.entries(config?.volumes ?? {}).map(([name, v]) => [name, v.snapshotDir]));
    const report = await gatherStatus(api, settings.server, { ...configured, ...opts.snapshotsDir });
    process.stdout.write(opts.json ? `${JSON.stringify(report, null, 2)}\n` : `${renderStatus(report)}\n`);
  });

program
  .command('snapshots')
  .description('the snapshots the server holds of your volumes: name, when taken, when received, size')
  .option('--config <file>', `the client's config file (server, tokenFile, caFile); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists`)
  .option('--server <url>', 'the snapferry server')
  .option('--volume <name>', 'only this volume')
  .option('--json', 'print JSON', false)
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV})`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .action(async (opts: { config?: string; volume?: string; json: boolean }, cmd: Command) => {
    const config = await findClientConfig(opts.config);
    const settings = clientSettings(givenOptions<ClientFlags>(cmd), config);
    const transport = createTransport(settings.server, settings.caFile !== undefined ? { caFile: settings.caFile } : {});
    const api = new ServerApi({ server: settings.server, transport, signal: interruptSignal(), headers: authHeaders(await readToken({ tokenFile: settings.tokenFile })) });
    const rows = await listSnapshots(api, opts.volume === undefined ? undefined : parseName(opts.volume, 'volume'));
    process.stdout.write(opts.json ? `${JSON.stringify(rows, null, 2)}\n` : `${renderSnapshots(rows)}\n`);
  });

program
  .command('abort')
  .description("throw away a transfer that is not being received (an upload, or a stream waiting for its receive), or delete the spool a failed one keeps on the server")
  .option('--config <file>', `the client's config file (server, tokenFile, caFile); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists`)
  .option('--server <url>', 'the snapferry server')
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV})`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .argument('<id>', 'the transfer, by its id or the first digits of it that `snapferry status` shows')
  .action(async (id: string, opts: { config?: string }, cmd: Command) => {
    const config = await findClientConfig(opts.config);
    const settings = clientSettings(givenOptions<ClientFlags>(cmd), config);
    const transport = createTransport(settings.server, settings.caFile !== undefined ? { caFile: settings.caFile } : {});
    const api = new ServerApi({ server: settings.server, transport, signal: interruptSignal(), headers: authHeaders(await readToken({ tokenFile: settings.tokenFile })) });
    process.stderr.write(`${await abortTransfer(api, id)}\n`);
  });

program
  .command('restore')
  .description('bring a snapshot back from the server into DEST_DIR (btrfs), incremental from the newest snapshot both sides hold; resumes after a cut or a crash')
  .option('--config <file>', `the client's config file (server, tokenFile, caFile, retries); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists`)
  .option('--server <url>', 'the snapferry server')
  .requiredOption('--volume <name>', 'the volume the snapshot belongs to on the server')
  .option('--parent-dir <dir>', 'look for a parent snapshot here instead of in DEST_DIR (same filesystem)')
  .option('--client <name>', "with an admin token: the client whose snapshot to restore")
  .option('--chunk-size <size>', 'raw bytes per frame (64K..16M)', parseSize)
  .option('--retries <n>', 'retries in a row without progress before giving up (default: forever)', parseCount)
  .option('--stall-timeout <duration>', 'drop a download on which nothing moved for this long, and resume on a new connection (default 30s; config: stallTimeout)', asArgument(parseStallTimeout))
  .option('--json', 'JSON lines of progress events on stdout', false)
  .option('--no-verify', "skip the last step: the restored snapshot checked against the server's digest of its copy (exit 3 when it differs)")
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV}); never pass a token itself as an argument`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .argument('<snapshot>', "the snapshot's name on the server (see `snapferry status`)")
  .argument('<dest-dir>', 'a folder on btrfs; the snapshot is received into it under its name')
  .action(async (snapshot: string, destDir: string, opts: { config?: string; volume: string; parentDir?: string; client?: string; chunkSize?: number; json: boolean; verify: boolean }, cmd: Command) => {
    const settings = clientSettings(givenOptions<ClientFlags>(cmd), await findClientConfig(opts.config));
    const headers = authHeaders(await readToken({ tokenFile: settings.tokenFile }));
    const report = opts.json ? jsonReporter() : textReporter();
    const result = await restore(
      {
        server: settings.server, volume: opts.volume, snapshot, destDir, headers, signal: interruptSignal(), verify: opts.verify,
        ...(opts.parentDir !== undefined ? { parentDir: opts.parentDir } : {}),
        ...(opts.client !== undefined ? { client: opts.client } : {}),
        ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
        ...(settings.retries !== undefined ? { retries: settings.retries } : {}),
        ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
        ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
      },
      report,
    ).finally(() => report.close?.());
    process.stderr.write(
      result.restored
        ? `done: restored ${result.snapshot} to ${result.path} (${result.parent ? `incremental from ${result.parent}` : 'full'}, ${formatBytes(result.rawBytes)})` +
          `${result.verifiedLineBytes === null ? '' : `, identical to the server's copy (${formatBytes(result.verifiedLineBytes)} on the line to check)`}\n`
        : `done: ${result.snapshot} is already at ${result.path}\n`,
    );
  });

program
  .command('verify')
  .description("prove that the server's copy of a snapshot equals the local read-only snapshot: both sides digest their tree and only digests cross the line, down to the paths that differ (exit 3 when any differs)")
  .option('--config <file>', `the client's config file (server, tokenFile, caFile, volumes); without --config, ${DEFAULT_CLIENT_CONFIG} when it exists`)
  .option('--server <url>', 'the snapferry server')
  .option('--volume <name>', 'the volume on the server (with a config and no snapshots: only this volume)')
  .option('--read-data', 'both sides read every byte again instead of starting from their saved digests (bit rot that a scrub has not reported)', false)
  .option('--client <name>', 'with an admin token: the client whose snapshots to verify')
  .option('--json', 'JSON lines of progress and results on stdout', false)
  .option('--digest-cache <dir>', "where this machine keeps its snapshots' digests, so the next verify reads only what changed", defaultDigestCache())
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV})`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .argument('[snapshot...]', "read-only snapshots (each is checked), or folders of them (the newest the server holds is); default: each configured volume's snapshotDir")
  .action(async (snapshots: string[], opts: { config?: string; volume?: string; readData: boolean; client?: string; json: boolean; digestCache: string }, cmd: Command) => {
    const config = await findClientConfig(opts.config);
    const settings = clientSettings(givenOptions<ClientFlags>(cmd), config);
    await verify(
      {
        server: settings.server, volumes: pushJobs(snapshots, opts.volume, config), readData: opts.readData, signal: interruptSignal(), digestCache: opts.digestCache,
        headers: authHeaders(await readToken({ tokenFile: settings.tokenFile })),
        ...(opts.client !== undefined ? { client: opts.client } : {}),
        ...(settings.caFile !== undefined ? { caFile: settings.caFile } : {}),
        ...(settings.stallTimeout !== undefined ? { stallMs: settings.stallTimeout } : {}),
      },
      opts.json ? jsonView() : textView(),
    );
  });

const clients = program.command('client').description("the server's clients and their tokens (run on the server)");

clients
  .command('add')
  .description('add a client (or, with --admin, a read-only admin) and print its token, once, on stdout (or into --token-file)')
  .argument('<name>', "the client's name: its volumes live under ROOT/volumes/NAME/")
  .requiredOption('--tokens <file>', "the server's tokens file (created if missing, mode 0600, with its folder)")
  .option('--token-file <file>', 'write the token into this new file (mode 0600) instead of stdout')
  .option('--admin', "a token that reads every client's volumes and transfers and changes nothing", false)
  .action(async (name: string, opts: { tokens: string; tokenFile?: string; admin: boolean }) => {
    // Where the token goes is checked before the client exists: a token nobody can keep safely is no use.
    const out = opts.tokenFile === undefined ? (checkTokenStdout(), 1) : openTokenFile(opts.tokenFile);
    let added: Awaited<ReturnType<typeof addClient>>;
    try {
      added = await addClient(opts.tokens, name, opts.admin ? 'admin' : 'client');
    } catch (err) {
      if (opts.tokenFile !== undefined) fs.rmSync(opts.tokenFile, { force: true });
      throw err;
    }
    fs.writeSync(out, `${added.token}\n`);
    if (opts.tokenFile !== undefined) fs.closeSync(out);
    const where = opts.tokenFile === undefined ? 'above' : `in ${opts.tokenFile} (mode 0600)`;
    process.stderr.write(
      `added ${added.entry.role} ${added.entry.name}; its token is ${where} and is not stored anywhere else: put it in a file (mode 0600) on the ` +
        `client and pass --token-file FILE, or set ${TOKEN_ENV}. A running server accepts it at once.\n`,
    );
  });

clients
  .command('list')
  .description('the names in a tokens file (never the tokens, which are not stored)')
  .requiredOption('--tokens <file>', "the server's tokens file")
  .option('--json', 'print JSON', false)
  .action(async (opts: { tokens: string; json: boolean }) => {
    const entries = (await readTokens(opts.tokens)).map(({ name, role, createdAt }) => ({ name, role, createdAt }));
    const text = entries.map((e) => `${e.name.padEnd(24)} ${e.role.padEnd(6)} ${e.createdAt}`).join('\n');
    process.stdout.write(opts.json ? `${JSON.stringify(entries, null, 2)}\n` : entries.length > 0 ? `${text}\n` : '');
  });

clients
  .command('remove')
  .description("remove a client's token; a running server refuses it from the next request on (its data stays)")
  .argument('<name>', 'the client to remove')
  .requiredOption('--tokens <file>', "the server's tokens file")
  .action(async (name: string, opts: { tokens: string }) => {
    const entry = await removeClient(opts.tokens, name);
    process.stderr.write(`removed ${entry.role} ${entry.name}; its snapshots stay under the server root\n`);
  });

addRunCommands(program);
applyConventions(program);

try {
  await program.parseAsync(process.argv);
  endIfInterrupted();
} catch (err) {
  const commanderExit = exitCodeOf(err);
  // An interrupted command's error (an AbortError, a cancelled upload) says less than that it was interrupted.
  if (!endIfInterrupted()) {
    // Commander has said its own (help, version, its usage errors).
    if (commanderExit === null) process.stderr.write(`snapferry: ${describeError(err)}\n`);
    process.exitCode = commanderExit ?? exitCodeFor(err);
  }
}
export { EXIT };
