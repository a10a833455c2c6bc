import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { acquireRunLock } from '../../client/run-lock.ts';
import { exitCodeFor, EXIT } from '../../client/exit-codes.ts';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-lock-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a second holder is refused while the first runs, with the pid that holds it; released, it is free again', async (t) => {
  const file = path.join(await tempDir(t), 'sub', 'run.lock');
  const first = await acquireRunLock(file);
  assert.equal(first.tookOverFrom, null);
  assert.match(await fs.readFile(file, 'utf8'), new RegExp(`^${process.pid}\\n`));
  await assert.rejects(acquireRunLock(file), (err: Error & { code: string }) => {
    assert.equal(err.code, 'run_locked');
    assert.match(err.message, new RegExp(`pid ${process.pid}`));
    assert.equal(exitCodeFor(err), EXIT.locked);
    return true;
  });
  await first.release();
  const again = await acquireRunLock(file);
  await again.release();
  await assert.rejects(fs.access(file));
});

test("a lock held by another live process is refused; once that process is gone, it is taken over with its pid", async (t) => {
  const file = path.join(await tempDir(t), 'run.lock');
  const holder = execa('sleep', ['60']);
  t.after(() => void holder.kill());
  await fs.writeFile(file, `${holder.pid}\n2026-01-01T00:00:00.000Z\n`);
  await assert.rejects(acquireRunLock(file), /another snapferry run \(pid \d+, started 2026-01-01T00:00:00.000Z\)/);

  holder.kill();
  await holder.catch(() => undefined);
  const lock = await acquireRunLock(file);
  assert.equal(lock.tookOverFrom, holder.pid);
  assert.match(await fs.readFile(file, 'utf8'), new RegExp(`^${process.pid}\\n`));
  await lock.release();
});

test('a lock file that names no pid (truncated by a crash) is taken over', async (t) => {
  const file = path.join(await tempDir(t), 'run.lock');
  await fs.writeFile(file, '');
  const lock = await acquireRunLock(file);
  assert.equal(lock.tookOverFrom, null);
  await lock.release();
});
