/**
 * snapferry as child processes, for end-to-end tests that kill things: `node bin/snapferry.js serve|push` started
 * with execa, their output kept for failure messages, and killed with SIGKILL, which leaves the program no chance to
 * clean up, as a crash or the OOM killer would.
 *
 * Each child runs in its own process group (detached), so that after the test whatever is left of it, the
 * `btrfs send` or `btrfs receive` it started included, can be killed too, whether the test passed or not. kill9()
 * itself kills only the snapferry process, as a crash does: its btrfs children then see their pipe close and stop
 * by themselves.
 */
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';

export const SNAPFERRY_BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

/** One command run to its end as a user runs it, whatever its exit code (the tests judge that). */
export function snapferry(args: string[]) {
  return execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000 });
}

interface AfterHook {
  after(fn: () => Promise<void> | void): void;
}

export interface ChildExit {
  /** Exit code, or null when a signal ended it. */
  code: number | null;
  signal: string | null;
}

export interface SpawnOptions {
  cwd?: string;
  /** Added to (and overriding) this process's environment. */
  env?: Record<string, string>;
  /**
   * Run inside this network namespace (`ip netns exec`, which execs the command: the pid is still snapferry's),
   * as on the far end of a shaped line (test/fixtures/shaped-line.ts).
   */
  netns?: string;
}

/** A running `snapferry` command. */
export class SnapferryProcess {
  readonly pid: number;
  /** Settles when the process has exited (never rejects). */
  readonly exited: Promise<ChildExit>;
  readonly args: readonly string[];
  #stdout = '';
  #stderr = '';
  #running = true;
  readonly #outputListeners = new Set<() => void>();

  constructor(args: readonly string[], options: SpawnOptions = {}) {
    this.args = args;
    const [file, argv] = options.netns ? ['ip', ['netns', 'exec', options.netns, 'node', SNAPFERRY_BIN, ...args]] : ['node', [SNAPFERRY_BIN, ...args]];
    const child = execa(file, argv, {
      reject: false,
      buffer: false,
      detached: true,
      stdin: 'ignore',
      ...(options.cwd ? { cwd: options.cwd } : {}),
      ...(options.env ? { env: options.env } : {}),
    });
    if (child.pid === undefined) throw new Error(`could not start snapferry ${args.join(' ')}`);
    this.pid = child.pid;
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      this.#stdout += s;
      for (const l of this.#outputListeners) l();
    });
    child.stderr.on('data', (s: string) => {
      this.#stderr += s;
      for (const l of this.#outputListeners) l();
    });
    this.exited = child.then((r) => {
      this.#running = false;
      for (const l of this.#outputListeners) l();
      return { code: r.exitCode ?? null, signal: r.signal ?? null };
    });
  }

  get running(): boolean {
    return this.#running;
  }

  get stdout(): string {
    return this.#stdout;
  }

  get stderr(): string {
    return this.#stderr;
  }

  /** Resolves with the first match of `pattern` on stderr; rejects when the process exits first or time runs out. */
  waitForStderr(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    return new Promise((resolve, reject) => {
      const check = () => {
        const m = pattern.exec(this.#stderr);
        if (m) return done(() => resolve(m));
        if (!this.#running) return done(() => reject(new Error(`snapferry ${this.args[0]} exited before printing ${pattern}:\n${this.#stderr}`)));
      };
      const timer = setTimeout(
        () => done(() => reject(new Error(`snapferry ${this.args[0]} printed no ${pattern} within ${timeoutMs} ms:\n${this.#stderr}`))),
        timeoutMs,
      );
      const done = (settle: () => void) => {
        clearTimeout(timer);
        this.#outputListeners.delete(check);
        settle();
      };
      this.#outputListeners.add(check);
      check();
    });
  }

  /** SIGKILL to the snapferry process alone; resolves once it is gone. */
  async kill9(): Promise<ChildExit> {
    if (this.#running) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
    return this.exited;
  }

  /** True while any process of its group (itself, or a btrfs command it started) is still alive. */
  groupAlive(): boolean {
    try {
      process.kill(-this.pid, 0);
      return true;
    } catch {
      return false;
    }
  }

  /** Waits until every process of its group has exited; false when some are still alive after `timeoutMs`. */
  async groupGone(timeoutMs: number): Promise<boolean> {
    const end = Date.now() + timeoutMs;
    while (this.groupAlive()) {
      if (Date.now() > end) return false;
      await sleep(10);
    }
    return true;
  }

  /**
   * SIGKILL to the whole process group. The group id is the child's pid, which the kernel does not hand out again
   * while any member of the group is alive, so this reaches only what this child started.
   */
  killGroup(): void {
    try {
      process.kill(-this.pid, 'SIGKILL');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

export interface ServeProcess extends SnapferryProcess {
  /** `http://HOST:PORT`, as the server printed it. */
  url: string;
  port: number;
}

export interface ServeOptions extends SpawnOptions {
  root: string;
  port: number;
  host?: string;
  /** Require the tokens in this file (--tokens) instead of --no-auth, which a non-loopback address needs. */
  tokensFile?: string;
  /** More flags for serve. */
  args?: readonly string[];
  /** How long to wait for the "serving" line; default 30 s. */
  readyTimeoutMs?: number;
}

/**
 * The snapferry processes of one test. Create it first thing in the test, before any fixture: node:test runs after
 * hooks in the order they were added, so the children (and the btrfs commands they started) are killed before the
 * filesystems they use are unmounted.
 */
export class ChildProcesses {
  readonly #started: SnapferryProcess[] = [];

  constructor(t: AfterHook) {
    t.after(async () => {
      for (const p of this.#started) p.killGroup();
      await Promise.all(this.#started.map((p) => p.exited));
    });
  }

  /** Starts `snapferry ARGS...`. */
  run(args: readonly string[], options: SpawnOptions = {}): SnapferryProcess {
    const p = new SnapferryProcess(args, options);
    this.#started.push(p);
    return p;
  }

  /**
   * Starts `snapferry serve` on a given port and waits until it says it is serving (it prints
   * "snapferry serving ROOT on URL" on stderr once it listens). A fixed port lets a test restart it where a proxy
   * already points.
   */
  async serve(options: ServeOptions): Promise<ServeProcess> {
    const host = options.host ?? '127.0.0.1';
    const auth = options.tokensFile === undefined ? ['--no-auth'] : ['--tokens', options.tokensFile];
    const p = this.run(['serve', '--root', options.root, '--listen', `${host}:${options.port}`, ...auth, ...(options.args ?? [])], options);
    try {
      const m = await p.waitForStderr(/snapferry serving .* on (http:\/\/\S+)/, options.readyTimeoutMs ?? 30_000);
      const url = m[1]!;
      return Object.assign(p, { url, port: Number(new URL(url).port) });
    } catch (err) {
      p.killGroup();
      throw err;
    }
  }
}

/** A TCP port that was free a moment ago (another process could still take it before the caller does). */
export function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, host, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
