/**
 * One `snapferry run` at a time: a timer that fires while a slow push still runs, or an admin running it by hand,
 * must not snapshot, push and prune the same volumes twice at once. The lock is a file created with O_EXCL that
 * holds the owner's pid. A lock whose pid is no longer running (the run was killed, the machine lost power with
 * the lock on persistent storage) is taken over, with a note; the default place, /run, is emptied at every boot.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SnapferryError } from '../core/errors.ts';

export class RunLocked extends SnapferryError {}

/** /run/snapferry/run.lock for root (what the systemd unit runs as); the user's runtime folder otherwise. */
export function defaultLockFile(env: NodeJS.ProcessEnv = process.env): string {
  if (process.getuid?.() === 0) return '/run/snapferry/run.lock';
  return path.join(env.XDG_RUNTIME_DIR ?? os.tmpdir(), 'snapferry-run.lock');
}

export interface RunLock {
  file: string;
  /** Set when a stale lock was taken over: whose it was. */
  tookOverFrom: number | null;
  release(): Promise<void>;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, it is just not ours to signal.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readOwner(file: string): Promise<{ text: string; pid: number | null } | null> {
  const text = await fs.readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (text === null) return null;
  const pid = Number(/^(\d+)/.exec(text)?.[1]);
  return { text, pid: Number.isSafeInteger(pid) && pid > 0 ? pid : null };
}

async function create(file: string): Promise<boolean> {
  try {
    const handle = await fs.open(file, 'wx', 0o644);
    try {
      await handle.writeFile(`${process.pid}\n${new Date().toISOString()}\n`);
    } finally {
      await handle.close();
    }
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  }
}

/**
 * Takes the lock or throws RunLocked (code `run_locked`) naming the run that holds it. Two runs that find the same
 * stale lock at the same moment: the lock is removed only while it still says what was read, and created with
 * O_EXCL, so at most one of them wins in all but a window of microseconds that a timer never hits.
 */
export async function acquireRunLock(file: string): Promise<RunLock> {
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o755 });
  let tookOverFrom: number | null = null;
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await create(file)) {
      return { file, tookOverFrom, release: () => fs.rm(file, { force: true }) };
    }
    const owner = await readOwner(file);
    if (owner === null) continue; // released between our two calls
    if (owner.pid !== null && alive(owner.pid)) {
      const since = owner.text.split('\n')[1] ?? 'an unknown time';
      throw new RunLocked('run_locked', `another snapferry run (pid ${owner.pid}, started ${since}) holds ${file}; this one stops so the two never overlap`, {
        details: { file, pid: owner.pid },
      });
    }
    const again = await readOwner(file);
    if (again?.text !== owner.text) continue;
    await fs.rm(file, { force: true });
    tookOverFrom = owner.pid;
  }
  throw new RunLocked('run_locked', `could not take ${file}: other runs keep taking it`, { details: { file } });
}
