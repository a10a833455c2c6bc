/**
 * A pipe this process makes itself, for a btrfs command's stdout: the write end goes to the child as its fd 1, the
 * read end stays here, to be read by pipe-reads.ts into memory we choose. Node has no pipe(2), and a child's stdout
 * made by child_process is already being read (into a new 64 KiB buffer per read) by the time we could take it over
 * (issue 22, docs/performance.md). So: a FIFO in a fresh directory that only this user can enter, opened at both
 * ends and unlinked at once; from then on it is an anonymous pipe that nothing else can open.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdtempSync, openSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface OwnPipe {
  /** Non-blocking: for a net.Socket (epoll), never for fs.read. */
  readFd: number;
  /** For the child's stdout; close it here as soon as the child has it, or the reader never sees EOF. */
  writeFd: number;
}

/** Throws (with the reason) when the pipe cannot be made: no mkfifo, no writable temporary directory. */
export function openOwnPipe(): OwnPipe {
  // mkdtemp makes the directory 0700: nobody else can open the FIFO in the moment before it is unlinked.
  const dir = mkdtempSync(join(tmpdir(), 'snapferry-pipe-'));
  try {
    const path = join(dir, 'stdout');
    execFileSync('mkfifo', ['-m', '600', '--', path], { stdio: ['ignore', 'ignore', 'pipe'] });
    // The read end first and non-blocking (a FIFO's open for reading waits for a writer otherwise); the write end
    // then opens at once because a reader exists. libuv opens both with O_CLOEXEC: no other child inherits them.
    const readFd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      return { readFd, writeFd: openSync(path, constants.O_WRONLY) };
    } catch (err) {
      closeSync(readFd);
      throw err;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
