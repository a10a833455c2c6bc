/**
 * The one gate through which snapferry runs btrfs: argv arrays (never a shell string), stderr kept as a bounded
 * tail for error messages, cancellation through an AbortSignal, and one mapping from "how the process ended" to
 * BtrfsCommandError. Commands (send.ts, receive.ts, subvolume.ts, and walk-estimate.ts's `find`) build argv and parse
 * output; nothing else spawns.
 */
import { execa } from 'execa';
import type { Readable, Writable } from 'node:stream';
import { describeError } from '../errors.ts';
import { BtrfsCommandError, tailOf } from './errors.ts';

export const BTRFS = 'btrfs';

/** stderr kept in memory per process: enough for the tail, bounded for `receive -E 0` that may print without end. */
const STDERR_KEEP_BYTES = 64 * 1024;

export interface RunOptions {
  /** Aborting it terminates btrfs (SIGTERM, SIGKILL 5 s later) and the call rejects with code btrfs_cancelled. */
  signal?: AbortSignal;
}

export interface StartOptions extends RunOptions {
  /** 'pipe' gives `stdin` to write to; default 'ignore'. */
  stdin?: 'pipe' | 'ignore';
  /**
   * 'stream' gives `stdout` that the caller must read; 'collect' keeps it for `stdoutText()`; a number is a file
   * descriptor of ours the process writes to instead (a pipe the caller reads itself, see own-pipe.ts); default
   * 'collect'.
   */
  stdout?: 'stream' | 'collect' | 'ignore' | number;
}

export interface BtrfsProcess {
  readonly argv: readonly string[];
  readonly stdin: Writable | null;
  readonly stdout: Readable | null;
  /**
   * Settles once the process has exited and its output has been read: resolves on exit code 0, rejects with a
   * BtrfsCommandError otherwise. Never rejects unhandled: it is marked handled here, awaiting it still throws.
   */
  readonly exited: Promise<void>;
  /** Everything on stdout, for stdout: 'collect'. */
  stdoutText(): string;
  /** The kept end of stderr (at most 64 KiB) so far. */
  stderrText(): string;
  /** Stop it from our side (SIGTERM); `exited` then rejects as cancelled, with `reason` in the message. */
  stop(reason: string): void;
}

export function startBtrfs(args: readonly string[], options: StartOptions = {}): BtrfsProcess {
  return startTool(BTRFS, args, options);
}

/** The package that installs each program run here, for "could not start" messages. */
const PACKAGES: Record<string, string> = { [BTRFS]: 'btrfs-progs', find: 'findutils' };

/**
 * The same gate for the one other program the btrfs layer runs: `find`, whose walk of a snapshot predicts its full
 * send (walk-estimate.ts). Its failures are BtrfsCommandErrors too: they stand for the same step.
 */
export function startTool(program: string, args: readonly string[], options: StartOptions = {}): BtrfsProcess {
  const argv = [program, ...args];
  const stdoutMode = options.stdout ?? 'collect';
  const subprocess = execa(program, args, {
    stdin: options.stdin ?? 'ignore',
    // execa passes any descriptor of ours on to the child; its types list only 3..9 (the fds of extra stdio slots).
    stdout: typeof stdoutMode === 'number' ? (stdoutMode as 3) : stdoutMode === 'ignore' ? 'ignore' : 'pipe',
    stderr: 'pipe',
    // We read both pipes ourselves: stdout is streamed (a send is many GB), stderr is kept as a bounded tail.
    buffer: false,
    reject: false,
    cancelSignal: options.signal,
    // btrfs-progs formats times with strftime's %X; a fixed locale keeps the output we parse fixed too.
    env: { LC_ALL: 'C' },
  });

  const stderrChunks: Buffer[] = [];
  let stderrBytes = 0;
  subprocess.stderr?.on('data', (chunk: Buffer) => {
    stderrChunks.push(chunk);
    stderrBytes += chunk.length;
    while (stderrBytes - (stderrChunks[0]?.length ?? 0) >= STDERR_KEEP_BYTES && stderrChunks.length > 1) {
      stderrBytes -= stderrChunks.shift()?.length ?? 0;
    }
  });
  const stdoutChunks: Buffer[] = [];
  if (stdoutMode === 'collect') subprocess.stdout?.on('data', (chunk: Buffer) => stdoutChunks.push(chunk));
  const stderrText = (): string => Buffer.concat(stderrChunks).toString('utf8');

  // execa settles only after stdout has ended, and a pipe that no one reads never ends: once we kill btrfs, what
  // it left in the pipe is drained into nothing, or a consumer that stopped reading would wait forever.
  const discardStdout = (): void => {
    if (stdoutMode !== 'stream' || subprocess.stdout === null) return;
    subprocess.stdout.unpipe();
    subprocess.stdout.resume();
  };
  if (options.signal?.aborted === true) discardStdout();
  else options.signal?.addEventListener('abort', discardStdout, { once: true });

  let stopReason: string | undefined;
  const exited = subprocess.then((result) => {
    options.signal?.removeEventListener('abort', discardStdout);
    if (!result.failed) return;
    const stopped = stopReason !== undefined;
    const spawnFailed = result.exitCode === undefined && result.signal === undefined && !result.isCanceled;
    throw new BtrfsCommandError({
      command: argv,
      exitCode: result.exitCode ?? null,
      signal: result.signal ?? null,
      stderrTail: tailOf(stderrText()),
      cancelled: result.isCanceled || stopped,
      reason: stopped ? `was stopped: ${stopReason}` : spawnFailed ? couldNotStart(program, result.cause) : undefined,
      cause: result.cause,
    });
  });
  exited.catch(() => {});

  return {
    argv,
    stdin: subprocess.stdin,
    stdout: stdoutMode === 'stream' ? subprocess.stdout : null,
    exited,
    stdoutText: () => Buffer.concat(stdoutChunks).toString('utf8'),
    stderrText,
    stop(reason: string) {
      stopReason ??= reason;
      discardStdout();
      subprocess.kill();
    },
  };
}

function couldNotStart(program: string, cause: unknown): string {
  const code = (cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return `could not start: ${program} is not installed (install ${PACKAGES[program] ?? program})`;
  return `could not start: ${cause instanceof Error ? cause.message : String(cause)}`;
}

/** Runs a short btrfs command to the end and returns its stdout; rejects with BtrfsCommandError. */
export async function runBtrfs(args: readonly string[], options: RunOptions = {}): Promise<string> {
  const proc = startBtrfs(args, { signal: options.signal, stdout: 'collect' });
  await proc.exited;
  return proc.stdoutText();
}

/**
 * Hands each chunk of a process started with stdout 'stream' to `take`, then waits for its exit (its status first:
 * a command that failed midway leaves truncated output, and its own error says why). Where reading or `take` fails,
 * the process is stopped; an aborted `signal` is said rather than how the interrupted read failed.
 */
export async function readStdout(proc: BtrfsProcess, take: (chunk: Buffer) => void, signal?: AbortSignal): Promise<void> {
  const stdout = proc.stdout;
  if (stdout === null) throw new Error(`${proc.argv[0]} started without a stdout pipe`);
  try {
    for await (const chunk of stdout) take(chunk as Buffer);
  } catch (err) {
    proc.stop(`its output could not be read: ${describeError(err)}`);
    const exit = await proc.exited.then(() => null, (e: unknown) => e);
    throw signal?.aborted === true && exit !== null ? exit : err;
  }
  await proc.exited;
}
