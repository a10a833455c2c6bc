/**
 * The kernel's lock (core/file-lock.ts) on this machine: taken through a flock(1) child that exits at once, it is
 * still held by this process's fd, and it is gone the moment its holder dies, even by SIGKILL, even while a child
 * the holder started lives on. Real processes; no root needed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa, type ResultPromise } from 'execa';
import { isHeld, tryLock, type HeldLock, type LockBusy } from '../../core/file-lock.ts';

const HOLDER = path.resolve(import.meta.dirname, '../fixtures/lock-holder.ts');

async function tempFile(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-lock-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return path.join(dir, 'serve.lock');
}

/** Starts a holder and resolves once it says it holds the lock, with its pid and its sleep child's. */
async function startHolder(t: { after(fn: () => void): void }, file: string, withChild = false): Promise<{ proc: ResultPromise; pid: number; childPid: number | null }> {
  const proc = execa('node', ['--import', 'tsx', HOLDER, file, ...(withChild ? ['--with-child'] : [])], { reject: false, buffer: false });
  t.after(() => void proc.kill('SIGKILL'));
  let out = '';
  proc.stdout!.setEncoding('utf8');
  const held = await new Promise<string>((resolve, reject) => {
    proc.stdout!.on('data', (s: string) => {
      out += s;
      if (/held \d+/.test(out)) resolve(out);
    });
    void proc.then(() => reject(new Error(`the holder exited: ${out}`)));
  });
  const childPid = /child (\d+)/.exec(held)?.[1];
  if (childPid) t.after(() => void process.kill(Number(childPid), 'SIGKILL'));
  return { proc, pid: Number(/held (\d+)/.exec(held)![1]), childPid: childPid ? Number(childPid) : null };
}

const busy = (r: HeldLock | LockBusy): LockBusy => {
  assert.ok(!isHeld(r), 'the lock should be busy');
  return r;
};

test('a held lock refuses another process and names the holder; the holder killed with SIGKILL frees it at once', async (t) => {
  const file = await tempFile(t);
  const holder = await startHolder(t, file);
  const refused = busy(await tryLock(file, 'test'));
  assert.equal(refused.holder?.pid, holder.pid);
  assert.equal(refused.holder?.command, 'lock-holder');
  assert.ok(Number.isFinite(Date.parse(refused.holder?.startedAt ?? '')), 'the holder says since when');

  process.kill(holder.pid, 'SIGKILL');
  await holder.proc;
  // No wait, no stale-pid check: the kernel dropped the lock with the holder's last fd.
  const taken = await tryLock(file, 'test');
  assert.ok(isHeld(taken), 'taken right after the kill');
  await taken.release();
});

test("a child the holder started does not keep the lock once the holder is gone (the fd is not inherited)", async (t) => {
  const file = await tempFile(t);
  const holder = await startHolder(t, file, true);
  assert.ok(holder.childPid !== null);
  process.kill(holder.pid, 'SIGKILL');
  await holder.proc;
  assert.doesNotThrow(() => process.kill(holder.childPid!, 0), 'the sleep child still runs');
  const taken = await tryLock(file, 'test');
  assert.ok(isHeld(taken), 'taken while the holder\'s child still runs');
  await taken.release();
});

test('within one process: a second take is refused until the first is released', async (t) => {
  const file = await tempFile(t);
  const first = await tryLock(file, 'first');
  assert.ok(isHeld(first));
  assert.equal(busy(await tryLock(file, 'second')).holder?.pid, process.pid);
  await first.release();
  await first.release(); // twice is harmless
  const second = await tryLock(file, 'second');
  assert.ok(isHeld(second), 'free once released');
  // A process that takes the lock now sees the new holder.
  const other = await execa('node', ['--import', 'tsx', HOLDER, file], { reject: false, timeout: 20_000 });
  assert.equal(other.exitCode, 1);
  assert.equal(other.stdout.trim(), `busy ${process.pid}`);
  await second.release();
});
