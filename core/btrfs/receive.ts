import fs from 'node:fs/promises';
import path from 'node:path';
import { finished } from 'node:stream';
import type { Readable, Writable } from 'node:stream';
import { isSnapferryError } from '../errors.ts';
import { BtrfsCommandError } from './errors.ts';
import { parseDumpSubvolume, parseReceivedSubvolume } from './parse.ts';
import { streamPathFailure } from './receive-failure.ts';
import { startBtrfs } from './run.ts';

export interface ReceiveOptions {
  /** Aborting kills btrfs receive; the call rejects with code btrfs_cancelled. */
  signal?: AbortSignal;
  /** `--chroot`: confine btrfs receive to the target directory (paths in a hostile stream cannot escape it). */
  chroot?: boolean;
  /** `-E N`: go on after up to N errors (0 = no limit); btrfs-progs' default is to stop at the first. */
  maxErrors?: number;
  /**
   * `-e`: finish at the stream's END command rather than at the end of input. Default true: one receive is one
   * stream, and its END command, not the input running out, is what says the stream is complete.
   */
  endOnEndCommand?: boolean;
  /** `--dump`: parse and check the stream without writing anything; targetDir is not used. */
  dumpOnly?: boolean;
  /** Called with each piece of `input` once it is in btrfs receive's pipe: its memory may be used again. */
  taken?: (piece: Buffer) => void;
}

export function receiveArgs(targetDir: string, options: ReceiveOptions = {}): string[] {
  const args = ['receive'];
  if (options.dumpOnly === true) return [...args, '--dump'];
  if (options.endOnEndCommand ?? true) args.push('-e');
  if (options.chroot === true) args.push('--chroot');
  if (options.maxErrors !== undefined) args.push('-E', String(options.maxErrors));
  return [...args, '--', targetDir];
}

/** How much of `--dump` output is kept: its first line names the subvolume, the rest is one line per command. */
const DUMP_KEEP_BYTES = 64 * 1024;

/**
 * Pipes `input` into `btrfs receive` and resolves with the name of the subvolume it created inside `targetDir`
 * (as btrfs reports it; null if it printed none), or with the name from the stream's first command for dumpOnly.
 *
 * receive owns `input`: it reads it to the end, or destroys it once btrfs exits, failed or (with `-e`) done at the
 * END command, which may come before the input ends. A caller whose stream goes on past END (an end frame behind it)
 * writes through core/receive/feed.ts, not into `input` itself. An error on the input kills btrfs receive before its
 * stdin closes, so btrfs never sees a clean end of input for a stream that broke. (6.2 rejects a stream without its
 * END command, "unexpected EOF in stream"; the kill does not rely on that.)
 *
 * Rejects with BtrfsCommandError: btrfs_failed (its stderr tail in the message), btrfs_cancelled (signal), or
 * btrfs_input_failed (the input's error as `cause`, its `retryable` carried over), or sendstream_cannot_apply (a
 * chrooted receive of a stream that names a path its own snapshot does not have, or has otherwise: the stream's
 * fault, or its parent's, not retryable; core/btrfs/receive-failure.ts). When btrfs had already created
 * the subvolume, `details.subvolume` names it: the caller deletes that partial subvolume.
 */
export async function receive(
  targetDir: string,
  input: Readable,
  options: ReceiveOptions = {},
): Promise<string | null> {
  const dumpOnly = options.dumpOnly === true;
  const proc = startBtrfs(receiveArgs(targetDir, options), {
    signal: options.signal,
    stdin: 'pipe',
    stdout: dumpOnly ? 'stream' : 'collect',
  });
  let dumpHead = '';
  proc.stdout?.on('data', (chunk: Buffer) => {
    if (dumpHead.length < DUMP_KEEP_BYTES) dumpHead += chunk.toString('utf8');
  });

  // btrfs-progs 6.2 prints "At subvol X" to stderr but "At snapshot X" to stdout.
  const receivedName = (): string | null =>
    parseReceivedSubvolume(proc.stderrText()) ?? parseReceivedSubvolume(proc.stdoutText());

  const stdin = proc.stdin;
  if (stdin === null) throw new Error('btrfs receive started without a stdin pipe');
  // EPIPE when btrfs stops reading early (bad stream, -e at END): its exit status says which, so ignore it here.
  stdin.on('error', () => {});
  let inputError: unknown;
  const stopPumping = pumpInto(input, stdin, options.taken);
  const stopWatching = finished(input, (err) => {
    if (err) {
      inputError = err;
      proc.stop(`its input failed: ${err.message}`);
    } else {
      stdin.end();
    }
  });

  try {
    await proc.exited;
  } catch (err) {
    const subvolume = receivedName();
    if (inputError !== undefined && err instanceof BtrfsCommandError) {
      throw new BtrfsCommandError({
        command: err.command,
        exitCode: err.exitCode,
        signal: err.signal,
        stderrTail: err.stderrTail,
        code: 'btrfs_input_failed',
        reason: `was stopped: its input failed: ${(inputError as Error).message}`,
        retryable: isSnapferryError(inputError) ? inputError.retryable : false,
        cause: inputError,
        details: { subvolume },
      });
    }
    const convicting = err instanceof BtrfsCommandError && !err.cancelled ? streamPathFailure(err.stderrTail, options.chroot === true) : null;
    // A path stops resolving for every stream once the subvolume it builds is taken away (by an admin, or a disk
    // that failed): then the failure is the server's, and a receive from the spool may heal it.
    if (convicting !== null && err instanceof BtrfsCommandError && (await stillThere(targetDir, subvolume))) {
      throw new BtrfsCommandError({
        command: err.command,
        exitCode: err.exitCode,
        signal: err.signal,
        stderrTail: err.stderrTail,
        code: 'sendstream_cannot_apply',
        reason: `exited with code ${err.exitCode ?? 'unknown'}: the stream names a path that the snapshot it builds does not have, or has as another kind of file, so no receive of it can succeed (a broken or hostile stream, or an incremental whose parent was changed after it was sent)`,
        retryable: false,
        cause: err,
        details: { subvolume, line: convicting },
      });
    }
    if (err instanceof BtrfsCommandError) err.details.subvolume = subvolume;
    throw err;
  } finally {
    stopWatching();
    stopPumping();
    stdin.destroy();
    // btrfs reads no more: at a failure, or at END with -e (whatever follows END is not btrfs's).
    if (!input.readableEnded) input.destroy();
  }
  return dumpOnly ? parseDumpSubvolume(dumpHead) : receivedName();
}

/**
 * `input.pipe(stdin, { end: false })`, with each piece's write callback: a piece is handed to `taken` once the write
 * succeeded, i.e. its bytes are in the kernel's pipe (a write cut off by an error may still be in libuv's hands).
 */
function pumpInto(input: Readable, stdin: Writable, taken: ((piece: Buffer) => void) | undefined): () => void {
  const write = (piece: Buffer): void => {
    const more = taken === undefined ? stdin.write(piece) : stdin.write(piece, (err) => err == null && taken(piece));
    if (!more) input.pause();
  };
  const drained = (): void => {
    input.resume();
  };
  input.on('data', write);
  stdin.on('drain', drained);
  return () => {
    input.off('data', write);
    stdin.off('drain', drained);
    input.pause();
  };
}

/** Whether the subvolume a receive was building is still in its target folder. */
async function stillThere(targetDir: string, subvolume: string | null): Promise<boolean> {
  if (subvolume === null) return false;
  return fs.lstat(path.join(targetDir, subvolume)).then((st) => st.isDirectory(), () => false);
}
