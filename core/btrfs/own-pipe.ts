/**
 * A pipe this process makes itself, for a btrfs command's stdout: the write end goes to the child as its fd 1, the
 * read end stays here, to be read by pipe-reads.ts into memory we choose. Node has no pipe(2), and a child's stdout
 * made by child_process is already being read (into a new 64 KiB buffer per read) by the time we could take it over
 * (issue 22, docs/performance.md). So: a FIFO in a fresh directory that only this user can enter, opened at both
 * ends and unlinked at once; from then on it is an anonymous pipe that nothing else can open.
 *
 * Every step is asynchronous: mkfifo is a process, and waiting for it synchronously (execFileSync) stopped the event
 * loop for its whole start and exit, a few ms per snapshot pushed, and longer on a loaded machine; the uploads, the
 * progress and the timers of a push run on that loop.
 */
import { close, constants, open } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { execa } from 'execa';

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
    await execa('mkfifo', ['-m', '600', '--', path], { stdin: 'ignore', stdout: 'ignore', stderr: 'pipe' });
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
