/**
 * The command line: one program, `serve` for the server side, `push` and `status` for the client side. Parsing and
 * exit codes live here; the work lives in server/ and client/.
 */
import { Command, InvalidArgumentError } from 'commander';
import { describeError } from '../core/errors.ts';
import { push } from '../client/push.ts';
import { ServerApi } from '../client/api.ts';
import { jsonReporter, textReporter } from '../client/report.ts';
import { renderStatus } from '../client/status-view.ts';
import { EXIT, exitCodeFor } from '../client/exit-codes.ts';
import { startServer } from '../server/serve.ts';
import { createLogger } from '../server/log.ts';

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

function parseCount(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number >= 0');
  return n;
}

function parseLevel(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 19) throw new InvalidArgumentError('expected a zstd level from 1 to 19');
  return n;
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
  .option('--log-level <level>', 'fatal, error, warn, info, debug', 'info')
  .action(async (opts: { root: string; listen: { host: string; port: number }; behindProxy: boolean; logLevel: string }) => {
    const log = createLogger(opts.logLevel);
    const server = await startServer({ root: opts.root, ...opts.listen, behindProxy: opts.behindProxy, log });
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
  .option('--compress-level <n>', 'zstd level, 1..19', parseLevel, 3)
  .option('--retries <n>', 'retries in a row without progress before giving up (default: forever)', parseCount)
  .option('--json', 'JSON lines of progress events on stdout', false)
  .argument('<snapshot...>', 'read-only snapshots, or folders holding them (btrbk, snapper layouts)')
  .action(async (snapshots: string[], opts: { server: string; volume: string; chunkSize?: number; compressLevel: number; retries?: number; json: boolean }) => {
    const controller = new AbortController();
    process.once('SIGINT', () => controller.abort());
    const report = opts.json ? jsonReporter() : textReporter();
    const result = await push(
      {
        server: opts.server, volume: opts.volume, snapshots, level: opts.compressLevel, signal: controller.signal,
        ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
        ...(opts.retries !== undefined ? { retries: opts.retries } : {}),
      },
      report,
    );
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
  .action(async (opts: { server: string; json: boolean }) => {
    const api = new ServerApi({ server: opts.server });
    const [status, volumes, transfers] = await Promise.all([api.status(), api.volumes(), api.transfers()]);
    const data = { status, volumes: volumes.volumes, transfers: transfers.transfers };
    process.stdout.write(opts.json ? `${JSON.stringify(data, null, 2)}\n` : `${renderStatus(data)}\n`);
  });

try {
  await program.parseAsync(process.argv);
} catch (err) {
  process.stderr.write(`snapferry: ${describeError(err)}\n`);
  process.exitCode = exitCodeFor(err);
}
export { EXIT };
