import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { acquireRunLock } from '../../../client/run/lock.ts';
import { exitCodeFor, EXIT } from '../../../client/exit-codes.ts';

const HOLDER = path.resolve(import.meta.dirname, '../../fixtures/lock-holder.ts');

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-lock-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

test('a second holder is refused while the first runs, with the pid that holds it; released, it is free again', async (t) => {
  const file = path.join(await tempDir(t), 'sub', 'run.lock');
  const first = await acquireRunLock(file);
  assert.equal(JSON.parse(await fs.readFile(file, 'utf8')).pid, process.pid);
  await assert.rejects(acquireRunLock(file), (err: Error & { code: string }) => {
    assert.equal(err.code, 'run_locked');
    assert.match(err.message, new RegExp(`another snapferry run \\(pid ${process.pid}, started \\S+\\) holds ${file}`));
    assert.equal(exitCodeFor(err), EXIT.locked);
    return true;
  });
  await first.release();
  const again = await acquireRunLock(file);
  await again.release();
});

test('a run killed with SIGKILL leaves no lock: the next run takes it at once', async (t) => {
  const file = path.join(await tempDir(t), 'run.lock');
  const holder = execa('node', ['--import', 'tsx', HOLDER, file], { reject: false, buffer: false });
  t.after(() => void holder.kill('SIGKILL'));
  holder.stdout!.setEncoding('utf8');
  await new Promise<void>((resolve) => holder.stdout!.on('data', (s: string) => s.includes('held') && resolve()));
  await assert.rejects(acquireRunLock(file), new RegExp(`\\(pid ${holder.pid}, started `));
  holder.kill('SIGKILL');
  await holder;
  const lock = await acquireRunLock(file);
  await lock.release();
});

test('a pid file of the old kind, naming a live process, is no lock: nothing holds the file', async (t) => {
  const file = path.join(await tempDir(t), 'run.lock');
  const other = execa('sleep', ['60'], { reject: false });
  t.after(() => void other.kill());
  // What a run of an earlier version left behind, or a pid the kernel has since given to another process.
  await fs.writeFile(file, `${other.pid}\n2026-01-01T00:00:00.000Z\n`);
  const lock = await acquireRunLock(file);
  await lock.release();
});
