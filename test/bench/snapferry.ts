/**
 * snapferry as the user runs it, for the bench: `bin/snapferry.js serve` and `push` as separate processes, each with
 * probe.mjs preloaded (peak RSS and CPU on exit). One server process serves one push, so that its peak RSS is that
 * push's; its CPU for the push is read from /proc around the push (startup not counted).
 */
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import * as btrfs from '../../core/btrfs/index.ts';
import { SNAPFERRY_BIN, SnapferryProcess, freePort } from '../e2e/processes.ts';
import type { Transfer } from '../../core/protocol.ts';
import type { Cleanup } from './cleanup.ts';
import { childrenReaped, probeEnv, processCpuSeconds, readProbe, type ProbeReport } from './measure.ts';

/** No proxy from the bench's environment: every row measures the direct path it names. */
const NO_PROXY_ENV = { https_proxy: '', HTTPS_PROXY: '', http_proxy: '', HTTP_PROXY: '' };

export interface Probes {
  /** A fresh file name for the next probe report. */
  next(name: string): string;
}

export async function probeDir(cleanup: Cleanup): Promise<Probes> {
  const dir = await mkdtemp(path.join(os.tmpdir(), `snapferry-bench-probe-${process.pid}-`));
  cleanup.after(() => rm(dir, { recursive: true, force: true }));
  let n = 0;
  return { next: (name) => path.join(dir, `${++n}-${name}.json`) };
}

/**
 * Restricts a process and every thread it has to these CPUs (`taskset -a -p -c`); the threads, workers and btrfs
 * commands it starts later inherit it. Called right after the spawn: node takes a few hundred ms to load before it
 * starts a worker or a btrfs command.
 */
export async function pinTo(pid: number, cpus: string): Promise<void> {
  await execa('taskset', ['-a', '-p', '-c', cpus, String(pid)]);
}

/** SNAPFERRY_BENCH_LOGS=DIR keeps what each snapferry process printed, in DIR/N-serve.log, DIR/N-push.log. */
const LOG_DIR = process.env.SNAPFERRY_BENCH_LOGS;
let spawned = 0;

function spawn(cleanup: Cleanup, args: readonly string[], env: Record<string, string>, netns?: string): SnapferryProcess {
  const child = new SnapferryProcess(args, { env: { ...NO_PROXY_ENV, ...env }, ...(netns !== undefined ? { netns } : {}) });
  const forget = cleanup.killOnSignal(child.pid);
  cleanup.after(async () => {
    child.killGroup();
    await child.exited;
  });
  const n = ++spawned;
  void child.exited.then(async () => {
    forget();
    if (LOG_DIR) await writeFile(path.join(LOG_DIR, `${n}-${args[0]}.log`), `${args.join(' ')}\n${child.stderr}${child.stdout}`).catch(() => undefined);
  });
  return child;
}

export interface ServerOptions {
  /** A btrfs server's root (--root); or: */
  root?: string;
  /** A config file to serve from instead (--config): an archive server's `store:` (archive.ts). */
  config?: string;
  /** Default: a free one. */
  port?: number;
  /** The address to listen on (default 127.0.0.1); any other needs `auth`. */
  host?: string;
  /** Run inside this network namespace: the far end of a shaped line (test/fixtures/shaped-line.ts). */
  netns?: string;
  /** Require tokens from this file. */
  auth?: ClientToken;
  /** With `auth`: trust nginx's forwarded headers, as deployed behind nginx (default true). */
  behindProxy?: boolean;
  /** Default warn: logging costs time on the LAN rows. */
  logLevel?: 'warn' | 'info' | 'debug';
  /** Run on these CPUs only (a taskset list, e.g. "1"): a small machine. */
  cpus?: string;
}

export class BenchServer {
  private constructor(
    readonly process: SnapferryProcess,
    readonly url: string,
    readonly port: number,
    private readonly probeFile: string,
    private readonly token: string | null,
  ) {}

  static async start(cleanup: Cleanup, probes: Probes, options: ServerOptions): Promise<BenchServer> {
    const probeFile = probes.next('serve');
    const port = options.port ?? (await freePort());
    const proxy = options.behindProxy === false ? [] : ['--behind-proxy'];
    const access = options.auth ? ['--tokens', options.auth.tokensFile, ...proxy] : ['--no-auth'];
    const listen = `${options.host ?? '127.0.0.1'}:${port}`;
    const from = options.config !== undefined ? ['--config', options.config] : ['--root', options.root ?? ''];
    const args = ['serve', ...from, '--listen', listen, '--log-level', options.logLevel ?? 'warn', ...access];
    const child = spawn(cleanup, args, probeEnv(probeFile), options.netns);
    if (options.cpus !== undefined) await pinTo(child.pid, options.cpus);
    const m = await child.waitForStderr(/snapferry serving .* on (http:\/\/\S+)/, 60_000);
    return new BenchServer(child, m[1]!, port, probeFile, options.auth?.token ?? null);
  }

  /** CPU of the server and the btrfs receives it has reaped. */
  async cpuSeconds(): Promise<number> {
    if (!(await childrenReaped(this.process.pid, /^btrfs$/))) throw new Error('snapferry serve still runs a btrfs command after its push ended');
    return processCpuSeconds(this.process.pid);
  }

  async transfers(): Promise<Transfer[]> {
    const response = await fetch(`${this.url}/v1/transfers`, this.token ? { headers: { authorization: `Bearer ${this.token}` } } : {});
    if (!response.ok) throw new Error(`GET /v1/transfers: ${response.status} ${await response.text()}`);
    return ((await response.json()) as { transfers: Transfer[] }).transfers;
  }

  /** SIGTERM (the server closes and exits), then what the probe saw over its life. */
  async stop(): Promise<ProbeReport> {
    process.kill(this.process.pid, 'SIGTERM');
    const exit = await Promise.race([this.process.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
    if (exit === null) {
      this.process.killGroup();
      throw new Error(`snapferry serve did not stop within 15 s of SIGTERM:\n${this.process.stderr}`);
    }
    return readProbe(this.probeFile);
  }
}

export interface PushRun {
  /** From starting the command until it exited: the server has received and checked the snapshot. */
  seconds: number;
  probe: ProbeReport;
  /** What the push said about its compression level (`--compress auto` changes it as it measures). */
  levelNotes: string[];
  /** Everything it printed on stderr. */
  stderr: string;
}

export interface PushOptions {
  /** The server the push talks to (directly or not): if it dies, the push is stopped and fails with its output. */
  target: BenchServer;
  /** The URL the push is given (default: the server's own). */
  url?: string;
  volume: string;
  snapshot: string;
  /** `--compress` auto, none or 1..19; default: snapferry's own (auto). */
  compress?: string;
  caFile?: string;
  tokenFile?: string;
  /** A push still running after this is killed and fails the bench (default 20 min): a hang must not block it. */
  timeoutMs?: number;
  /** Run on these CPUs only (a taskset list, e.g. "0"), btrfs send included: a small machine. */
  cpus?: string;
}

export async function runPush(cleanup: Cleanup, probes: Probes, options: PushOptions): Promise<PushRun> {
  const probeFile = probes.next('push');
  const args = ['push', '--server', options.url ?? options.target.url, '--volume', options.volume];
  if (options.compress) args.push('--compress', options.compress);
  if (options.caFile) args.push('--ca-file', options.caFile);
  if (options.tokenFile) args.push('--token-file', options.tokenFile);
  const started = performance.now();
  const child = spawn(cleanup, [...args, options.snapshot], probeEnv(probeFile));
  if (options.cpus !== undefined) await pinTo(child.pid, options.cpus);
  const timeoutMs = options.timeoutMs ?? 20 * 60_000;
  let why: string | null = null;
  let more = '';
  const timer = setTimeout(() => {
    why = `still running after ${timeoutMs / 60_000} min`;
    child.killGroup();
  }, timeoutMs);
  // A push retries a dead server for ever (as it should, for a server that is restarting): the bench cannot wait.
  const server = options.target.process;
  void server.exited.then((exit) => {
    if (!child.running) return;
    const error = deathOf(server.stderr);
    why = `snapferry serve exited (${exit.code ?? exit.signal}) during the push: ${error}`;
    more = `\n--- the end of snapferry serve's output ---\n${server.stderr.slice(-3000)}`;
    child.killGroup();
  });
  const exit = await child.exited.finally(() => clearTimeout(timer));
  const seconds = (performance.now() - started) / 1000;
  if (exit.code !== 0) {
    throw new Error(
      `push of ${path.basename(options.snapshot)} failed: ${why ?? `exit ${exit.code ?? exit.signal}: ${lastError(child.stderr)}`}\n` +
        `command: snapferry ${args.join(' ')}${more}\n--- the end of its output ---\n${child.stderr.slice(-3000)}`,
    );
  }
  const levelNotes = child.stderr.split('\n').filter((l) => /compression (level|off)/.test(l)).map((l) => l.replace(/^note: /, ''));
  return { seconds, probe: await readProbe(probeFile), levelNotes, stderr: child.stderr };
}

export interface RestoreRun {
  /** From starting the command until it exited: downloaded, received and checked. */
  seconds: number;
  probe: ProbeReport;
}

/** `snapferry restore --no-verify` of `snapshot` into `destDir` (the restore's own CPU in `probe`). */
export async function runRestore(cleanup: Cleanup, probes: Probes, options: { target: BenchServer; volume: string; snapshot: string; destDir: string; cpus?: string }): Promise<RestoreRun> {
  const probeFile = probes.next('restore');
  const args = ['restore', '--server', options.target.url, '--volume', options.volume, '--no-verify', options.snapshot, options.destDir];
  const started = performance.now();
  const child = spawn(cleanup, args, probeEnv(probeFile));
  if (options.cpus !== undefined) await pinTo(child.pid, options.cpus);
  const exit = await child.exited;
  const seconds = (performance.now() - started) / 1000;
  if (exit.code !== 0) throw new Error(`restore of ${options.snapshot} failed: exit ${exit.code ?? exit.signal}: ${lastError(child.stderr)}\n${child.stderr.slice(-3000)}`);
  return { seconds, probe: await readProbe(probeFile) };
}

/** Why serve died: what server/crash-log.ts logged (a crash, or an exit nobody asked for), else a stack trace's first line. */
function deathOf(stderr: string): string {
  for (const line of stderr.trim().split('\n').reverse()) {
    if (!line.startsWith('{')) continue;
    try {
      const entry = JSON.parse(line) as { level?: number; msg?: string; err?: { message?: string } };
      if (entry.level === 60 || entry.msg?.startsWith('the server process exits')) return [entry.msg, entry.err?.message].filter((s) => s).join(': ');
    } catch {
      // Not a log line.
    }
  }
  return /^\w*Error\b.*$/m.exec(stderr)?.[0] ?? 'see its output';
}

/** The CLI's own last word on why it failed (`snapferry: ...`), else the last line it printed. */
function lastError(stderr: string): string {
  const lines = stderr.trim().split('\n');
  const said = lines.filter((l) => l.startsWith('snapferry: ')).at(-1);
  return (said ?? lines.at(-1) ?? '').replace(/^snapferry: /, '');
}

/** What a snapferry process costs before it does anything: node, tsx, and every module loaded (`push --help`). */
export interface ClientStartup {
  /** Subtracted from each push's CPU (the least of two runs). */
  cpuSeconds: number;
  maxRssBytes: number;
}

export async function clientStartup(probes: Probes): Promise<ClientStartup> {
  const runs: ProbeReport[] = [];
  for (let i = 0; i < 2; i++) {
    const probeFile = probes.next('help');
    await execa('node', [SNAPFERRY_BIN, 'push', '--help'], { env: probeEnv(probeFile) });
    runs.push(await readProbe(probeFile));
  }
  return { cpuSeconds: Math.min(...runs.map((r) => r.cpuSeconds)), maxRssBytes: Math.min(...runs.map((r) => r.maxRssBytes)) };
}

export interface ClientToken {
  /** The server's tokens file (--tokens). */
  tokensFile: string;
  /** The client's token file (--token-file, mode 0600). */
  tokenFile: string;
  token: string;
}

/** A client `bench` in a new tokens file, and its token in a file for the client. */
export async function createToken(dir: string): Promise<ClientToken> {
  const tokensFile = path.join(dir, 'tokens.json');
  const { stdout } = await execa('node', [SNAPFERRY_BIN, 'client', 'add', 'bench', '--tokens', tokensFile]);
  const tokenFile = path.join(dir, 'client.token');
  const token = stdout.trim();
  await writeFile(tokenFile, `${token}\n`, { mode: 0o600 });
  return { tokensFile, tokenFile, token };
}

/** Deletes every subvolume a server received under `root`, then the root itself. */
export async function removeServerRoot(root: string): Promise<void> {
  const volumes = path.join(root, 'volumes');
  for (const client of await readdir(volumes).catch(() => [] as string[])) {
    for (const volume of await readdir(path.join(volumes, client))) {
      for (const name of await readdir(path.join(volumes, client, volume))) {
        const p = path.join(volumes, client, volume, name);
        if (await btrfs.isSubvolume(p)) await btrfs.deleteSubvolume(p);
      }
    }
  }
  await rm(root, { recursive: true, force: true });
}
