/**
 * The command line: one program, `serve` for the server side, `push` and `status` for the client side. Parsing and
 * exit codes live here; the work lives in server/ and client/.
 */
import { Command, InvalidArgumentError } from 'commander';
import { describeError, ValidationError } from '../core/errors.ts';
import { push } from '../client/push.ts';
import { ServerApi } from '../client/api.ts';
import { createTransport } from '../client/transport.ts';
import { jsonReporter, textReporter } from '../client/report.ts';
import { renderStatus } from '../client/status-view.ts';
import { EXIT, exitCodeFor } from '../client/exit-codes.ts';
import { startServer } from '../server/serve.ts';
import { createLogger } from '../server/log.ts';
import { assertOpenAccessAllowed } from '../server/auth.ts';
import { addClient, readTokens, removeClient } from '../server/tokens.ts';
import { authHeaders, readToken, TOKEN_ENV } from '../client/token.ts';
import { parseCompressSetting, type CompressSetting } from '../client/compression.ts';
import { sendCompressedModes, type SendCompressedMode } from '../core/btrfs/features.ts';

function parseListen(value: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d{1,5})$/.exec(value);
  const port = Number(m?.[3]);
  if (!m || port > 65535) throw new InvalidArgumentError('expected HOST:PORT, e.g. 127.0.0.1:8080');
  return { host: m[1] ?? (m[2] || '127.0.0.1'), port };
}

function parseSize(value: string): number {
  const m = /^(\d+)([kmg]?)i?b?$/i.exec(value.trim());
  if (!m) throw new InvalidArgumentError('expected a size like 4M or 1048576');
  const mult = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 }[m[2]!.toLowerCase() as '' | 'k' | 'm' | 'g'];
  return Number(m[1]) * mult;
}

function parsePositiveSize(value: string): number {
  const n = parseSize(value);
  if (n <= 0) throw new InvalidArgumentError('expected a size above 0, like 200k');
  return n;
}

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number >= 0');
  return n;
}

/** serve is secure by default: tokens, or an explicit --no-auth that only a loopback address may use. */
function accessOf(opts: { tokens?: string; auth: boolean; listen: { host: string }; behindProxy: boolean }): { tokensFile?: string } {
  if (!opts.auth) {
    if (opts.tokens !== undefined) throw new ValidationError('give --tokens FILE or --no-auth, not both');
    assertOpenAccessAllowed(opts.listen.host, opts.behindProxy);
    return {};
  }
  if (opts.tokens === undefined) {
    throw new ValidationError(
      'serve needs --tokens FILE (create it with `snapferry client add NAME --tokens FILE`), or --no-auth to let anyone ' +
        'who can connect push, which is allowed on a loopback address only',
    );
  }
  return { tokensFile: opts.tokens };
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
  .description('Resumable, verified replication of btrfs snapshots over HTTPS')
  .showHelpAfterError();

program
  .command('serve')
  .description('run the server: receive pushed snapshots into --root (a folder on btrfs)')
  .requiredOption('--root <dir>', 'server root on btrfs: spool, catalog and received snapshots live here')
  .option('--listen <host:port>', 'address to listen on', parseListen, { host: '127.0.0.1', port: 8080 })
  .option('--behind-proxy', 'trust X-Forwarded-Proto/Host from the reverse proxy (nginx overwrites them)', false)
  .option('--tls-cert <file>', 'serve HTTPS with this PEM certificate chain (with --tls-key; not needed behind nginx)')
  .option('--tls-key <file>', 'the PEM private key of --tls-cert')
  .option('--tokens <file>', 'require a client token from this file on every request (see `snapferry client add`)')
  .option('--no-auth', 'accept every request as the one client "default" (loopback addresses only)')
  .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
  .action(async (opts: { root: string; listen: { host: string; port: number }; behindProxy: boolean; logLevel: string; tokens?: string; auth: boolean; tlsCert?: string; tlsKey?: string }) => {
    const access = accessOf(opts);
    if ((opts.tlsCert === undefined) !== (opts.tlsKey === undefined)) throw new ValidationError('--tls-cert and --tls-key go together');
    const tls = opts.tlsCert && opts.tlsKey ? { tls: { cert: opts.tlsCert, key: opts.tlsKey } } : {};
    const log = createLogger(opts.logLevel);
    const server = await startServer({ root: opts.root, ...opts.listen, behindProxy: opts.behindProxy, log, ...access, ...tls });
    process.stderr.write(`snapferry serving ${opts.root} on ${server.url}\n`);
    const stop = () => {
      void server.close().then(() => process.exit(0));
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });

program
  .command('push')
  .description("send a volume's snapshots the server lacks (full or incremental), and wait until it has received them")
  .requiredOption('--server <url>', 'the snapferry server, e.g. https://backup.example.net')
  .requiredOption('--volume <name>', 'the volume these snapshots belong to (a name on the server)')
  .option('--chunk-size <size>', 'raw bytes per frame (64K..16M)', parseSize)
  .option('--compress <level>', 'auto (the highest zstd level that stays ahead of the link), none, or a zstd level 1..19', parseCompress, 'auto' as CompressSetting)
  .option('--retries <n>', 'retries in a row without progress before giving up (default: forever)', parseCount)
  .option('--limit-rate <rate>', 'upload at most this many bytes per second, e.g. 200k or 1M (keeps the line usable)', parsePositiveSize)
  .option('--send-compressed <mode>', 'btrfs send --proto 2 --compressed-data: auto (when the snapshots\' filesystem is mounted with compression and both ends can), on, off', parseSendCompressed, 'auto')
  .option('--json', 'JSON lines of progress events on stdout', false)
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV}); never pass a token itself as an argument`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .argument('<snapshot...>', 'read-only snapshots, or folders holding them (btrbk, snapper layouts)')
  .action(async (snapshots: string[], opts: { server: string; volume: string; chunkSize?: number; compress: CompressSetting; retries?: number; limitRate?: number; sendCompressed: SendCompressedMode; json: boolean; tokenFile?: string; caFile?: string }) => {
    const headers = authHeaders(await readToken({ tokenFile: opts.tokenFile }));
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const report = opts.json ? jsonReporter() : textReporter();
    const result = await push(
      {
        server: opts.server, volume: opts.volume, snapshots, compress: opts.compress, signal: controller.signal, headers,
        sendCompressed: opts.sendCompressed,
        ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
        ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
        ...(opts.limitRate !== undefined ? { limitRate: opts.limitRate } : {}),
        ...(opts.caFile !== undefined ? { caFile: opts.caFile } : {}),
      },
      report,
    ).finally(() => report.close?.());
    const sent = result.sent.map((s) => s.snapshot);
    process.stderr.write(
      sent.length > 0 ? `done: ${sent.length} snapshot(s) received by the server (${sent.join(', ')})\n` : 'done: the server already holds everything\n',
    );
  });

program
  .command('status')
  .description('what the server holds and what is in flight')
  .requiredOption('--server <url>', 'the snapferry server')
  .option('--json', 'print JSON', false)
  .option('--token-file <file>', `the client's token (or set ${TOKEN_ENV})`)
  .option('--ca-file <file>', "trust the CA certificates in this PEM file too (a private CA signed the server's certificate)")
  .action(async (opts: { server: string; json: boolean; tokenFile?: string; caFile?: string }) => {
    const transport = createTransport(opts.server, opts.caFile !== undefined ? { caFile: opts.caFile } : {});
    const api = new ServerApi({ server: opts.server, transport, headers: authHeaders(await readToken({ tokenFile: opts.tokenFile })) });
    const [status, volumes, transfers] = await Promise.all([api.status(), api.volumes(), api.transfers()]);
    const data = { status, volumes: volumes.volumes, transfers: transfers.transfers };
    process.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `${renderStatus(data)}\n`);
  });

const clients = program.command('client').description("the server's clients and their tokens (run on the server)");

clients
  .command('add')
  .description('add a client (or, with --admin, a read-only admin) and print its token, once, on stdout')
  .argument('<name>', "the client's name: its volumes live under ROOT/volumes/NAME/")
  .requiredOption('--tokens <file>', "the server's tokens file (created if missing, mode 0600)")
  .option('--admin', "a token that reads every client's volumes and transfers and changes nothing", false)
  .action(async (name: string, opts: { tokens: string; admin: boolean }) => {
    const { entry, token } = await addClient(opts.tokens, name, opts.admin ? 'admin' : 'client');
    process.stdout.write(`${token}\n`);
    process.stderr.write(
      `added ${entry.role} ${entry.name}; its token is above and is not stored anywhere: put it in a file (mode 0600) on the ` +
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

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`snapferry: ${describeError(err)}\n`);
  process.exitCode = exitCodeFor(err);
}
export { EXIT };
