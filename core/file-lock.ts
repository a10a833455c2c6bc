/**
 * An exclusive lock held for a process's whole life and released by the kernel when it dies: flock(2) on a file.
 * A crash, kill -9 or the OOM killer never leaves a stale lock, so there is no pid to check and no takeover to get
 * wrong (the pid-file way races between "is it alive?" and "take it over", and a recycled pid looks alive).
 *
 * Node has no flock(2). flock locks belong to the open file description, not to the process that asked: this process
 * opens the file, and util-linux `flock --exclusive --nonblock 3` locks it through fd 3, which is that same open file
 * description handed down. The lock stays when that child exits, held by this process's fd, and goes when the fd is
 * closed: by release(), or by the kernel when this process dies (test/core/file-lock.test.ts kills a holder with
 * SIGKILL and takes the lock right after). Node opens files with O_CLOEXEC, so the other children this process starts
 * (btrfs send, btrfs receive) never inherit the lock and cannot hold it after this process is gone.
 *
 * Whoever holds the lock writes who it is into the file (pid, start time, command), for the refusal message of the
 * next one; the content is only ever a note, the lock itself is the kernel's, so a note that cannot be written (a full
 * disk) is told to the caller (`noteError`) and never costs the lock.
 */
import fs from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawn } from 'node:child_process';
import { z } from 'zod';
import { SnapferryError } from './errors.ts';

/** Who holds a lock, as the holder wrote it. */
export const LockHolder = z.object({ pid: z.number().int().positive(), startedAt: z.string(), command: z.string() });
export type LockHolder = z.infer<typeof LockHolder>;

export interface HeldLock {
  file: string;
  /**
   * Why the holder's note could not be written (a full disk), or null. The lock holds all the same: the note only
   * names the holder to the next one, which then says "not written yet". A full backup disk is when reads (status,
   * snapshots, restore) matter most, and a failed note once kept `serve` from starting at all.
   */
  noteError: Error | null;
  /** Gives the lock up (closes the fd); safe to call more than once. */
  release(): Promise<void>;
}

/** The lock is someone else's: who (null when it wrote nothing readable yet: it is just taking it). */
export interface LockBusy {
  holder: LockHolder | null;
}

/** flock(1): exit 1 when --nonblock finds the lock held ("the lock could not be acquired"). */
const FLOCK_BUSY = 1;
/** A holder writes its note right after taking the lock: give it this long before saying "unknown". */
const NOTE_WAIT_MS = 500;

/**
 * Takes the lock on `file` (created when missing; its folder must exist), or says who holds it. `command` is what
 * the note names (e.g. `snapferry serve`).
 */
export async function tryLock(file: string, command: string): Promise<HeldLock | LockBusy> {
  const handle = await fs.open(file, fs.constants.O_RDWR | fs.constants.O_CREAT, 0o644);
  try {
    const flock = await runFlock(handle.fd);
    if (flock.exitCode === FLOCK_BUSY) {
      await handle.close();
      return { holder: await readHolder(file) };
    }
    if (flock.exitCode !== 0) {
      throw new SnapferryError('lock_unavailable', `cannot lock ${file} with flock(1): ${flock.why}; it comes with util-linux`, { details: { file } });
    }
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  const note: LockHolder = { pid: process.pid, startedAt: new Date().toISOString(), command };
  const noteError = await handle.truncate(0).then(() => handle.write(`${JSON.stringify(note)}\n`, 0)).then(() => null, (err: unknown) => (err instanceof Error ? err : new Error(String(err))));
  let released: Promise<void> | null = null;
  return {
    file,
    noteError,
    release: () => {
      // The note goes first: a holder that takes the lock next and has not written its own yet is not mistaken for us.
      released ??= handle.truncate(0).catch(() => undefined).then(() => handle.close());
      return released;
    },
  };
}

/**
 * Takes the lock on a folder itself (flock(2) on the folder, opened read-only), or says it is held. Nothing is
 * written, so no file is left in a folder whose contents are the user's (a restore's DEST_DIR), and no file is ever
 * removed to tidy up, which would let a third process lock a new file while a second still holds the old one. The
 * holder leaves no note: `holder` is always null.
 */
export async function tryLockFolder(dir: string): Promise<HeldLock | LockBusy> {
  const handle = await fs.open(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    const flock = await runFlock(handle.fd);
    if (flock.exitCode === FLOCK_BUSY) {
      await handle.close();
      return { holder: null };
    }
    if (flock.exitCode !== 0) {
      throw new SnapferryError('lock_unavailable', `cannot lock ${dir} with flock(1): ${flock.why}; it comes with util-linux`, { details: { file: dir } });
    }
  } catch (err) {
    await handle.close().catch(() => undefined);
    throw err;
  }
  let released: Promise<void> | null = null;
  return { file: dir, noteError: null, release: () => (released ??= handle.close()) };
}

/**
 * `flock --exclusive --nonblock 3` with this process's `fd` as the child's fd 3. node:child_process rather than
 * execa, whose types do not take a bare fd in stdio; an argv array all the same, never a shell.
 */
function runFlock(fd: number): Promise<{ exitCode: number | null; why: string }> {
  return new Promise((resolve) => {
    const child = spawn('flock', ['--exclusive', '--nonblock', '3'], { stdio: ['ignore', 'ignore', 'pipe', fd], env: { ...process.env, LC_ALL: 'C' } });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (s: string) => void (stderr = (stderr + s).slice(-300)));
    child.once('error', (err) => resolve({ exitCode: null, why: err.message }));
    child.once('close', (code, signal) => resolve({ exitCode: code, why: `exit ${code ?? signal}${stderr.trim() ? `: ${stderr.trim()}` : ''}` }));
  });
}

export function isHeld(result: HeldLock | LockBusy): result is HeldLock {
  return 'release' in result;
}

/** The holder's note; null when it has written none (it took the lock a moment ago) or wrote something else. */
export async function readHolder(file: string): Promise<LockHolder | null> {
  const end = Date.now() + NOTE_WAIT_MS;
  for (;;) {
    const text = await fs.readFile(file, 'utf8').catch(() => '');
    const parsed = LockHolder.safeParse(parseJson(text));
    if (parsed.success) return parsed.data;
    if (Date.now() > end) return null;
    await sleep(25);
  }
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** "snapferry serve (pid 123, since 2026-12-05T00:00:00.000Z)", or words for a holder that said nothing yet. */
export function describeHolder(holder: LockHolder | null): string {
  return holder === null ? 'another process (its pid is not written yet: it is just starting)' : `${holder.command} (pid ${holder.pid}, since ${holder.startedAt})`;
}
