/**
 * A pipe this process makes itself, for a btrfs command's stdout: the write end goes to the child as its fd 1, the
 * read end stays here, to be read by pipe-reads.ts into memory we choose. Node has no pipe(2), and a child's stdout
 * made by child_process is already being read (into a new 64 KiB buffer per read) by the time we could take it over
 * (issue 22, docs/performance.md). So: a FIFO in a fresh directory that only this user can enter, opened at both
 * ends and unlinked at once; from then on it is an anonymous pipe that nothing else can open.
 *
 * The steps wait asynchronously (the event loop runs a push's uploads, progress and timers): mkfifo is a process,
 * and execFileSync held the loop until it had exited. What still holds it is the spawn, which node returns from only
 * once the child has exec'd: the shortest stall went from 2.2-2.7 ms to 1.4-1.6 ms (docs/performance.md,
 * 2026-12-05). Plain execFile, not execa as core/btrfs/run.ts: execa's own synchronous setup made its call hold the
 * loop about as long as the whole execFileSync did, and this command needs none of what execa adds.
 */
import { execFile } from 'node:child_process';
import { close, constants, open } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const openFd = promisify(open);
const closeFd = promisify(close);

export interface OwnPipe {
  /** Non-blocking: for a net.Socket (epoll), never for fs.read. */
  readFd: number;
  /** For the child's stdout; close it here as soon as the child has it, or the reader never sees EOF. */
  writeFd: number;
}

/** Rejects (with the reason) when the pipe cannot be made: no mkfifo, no writable temporary directory. */
export async function openOwnPipe(): Promise<OwnPipe> {
  // mkdtemp makes the directory 0700: nobody else can open the FIFO in the moment before it is unlinked.
  const dir = await mkdtemp(join(tmpdir(), 'snapferry-pipe-'));
  try {
    const path = join(dir, 'stdout');
    // Its error's message is the command and mkfifo's stderr.
    await run('mkfifo', ['-m', '600', '--', path]);
    // The read end first and non-blocking (a FIFO's open for reading waits for a writer otherwise); the write end
    // then opens at once because a reader exists. libuv opens both with O_CLOEXEC: no other child inherits them.
    const readFd = await openFd(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      return { readFd, writeFd: await openFd(path, constants.O_WRONLY) };
    } catch (err) {
      await closeFd(readFd);
      throw err;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
