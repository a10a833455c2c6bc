/**
 * `serve` on a root whose filesystem is full starts all the same. The root lock's note (who holds it) is only a note:
 * the flock is the lock (core/file-lock.ts), so a note that cannot be written is a warning naming the file, not an
 * exit. Before, serve exited 1 with nothing but "snapferry: ENOSPC: no space left on device, write", when a full
 * backup disk is just when status, snapshots and restore are wanted (uploads get the usual 507 disk_full).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { fillUntilFull } from './fill-disk.ts';
import { createPair } from './harness.ts';
import { ChildProcesses, freePort } from './processes.ts';

/** Small files, kept in btrfs's metadata, until that is full too: no write of any size fits any more. */
async function fillMetadata(dir: string): Promise<number> {
  await fs.mkdir(dir, { recursive: true });
  const note = Buffer.alloc(1500, 7);
  for (let i = 0; ; i++) {
    try {
      await fs.writeFile(path.join(dir, `m${i}`), note);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOSPC') return i;
      throw err;
    }
  }
}

test('serve on a full root starts, warns that the lock note could not be written, and answers reads', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { serverMiB: 128, fillMB: 1, seed: 'serve-full-root' });
  // A first run lays the root out (and leaves its lock file, empty, as any stop does).
  const first = await children.serve({ root: pair.root, port: await freePort() });
  process.kill(first.pid, 'SIGTERM');
  await first.exited;

  await fillUntilFull(path.join(pair.server.mountPoint, 'filler'));
  await fillMetadata(path.join(pair.server.mountPoint, 'small'));
  await execa('btrfs', ['filesystem', 'sync', pair.server.mountPoint]);
  // Still full after the sync: the note of the lock cannot be written.
  await assert.rejects(fs.appendFile(path.join(pair.server.mountPoint, 'small', 'probe'), Buffer.alloc(1500, 7)), { code: 'ENOSPC' });

  const server = await children.serve({ root: pair.root, port: await freePort() });
  const lockFile = path.join(pair.root, 'serve.lock');
  assert.ok(server.stderr.includes(lockFile), `a warning names the lock file:\n${server.stderr}`);
  assert.match(server.stderr, /could not write who holds the root's lock/);
  const status = await fetch(`${server.url}/v1/status`);
  assert.equal(status.status, 200, await status.text());
  const volumes = await fetch(`${server.url}/v1/volumes`);
  assert.equal(volumes.status, 200, await volumes.text());
  // The lock holds all the same: a second serve is refused.
  const second = children.run(['serve', '--root', pair.root, '--listen', `127.0.0.1:${await freePort()}`, '--no-auth']);
  assert.deepEqual(await second.exited, { code: 1, signal: null }, second.stderr);
  assert.match(second.stderr, /is in use by/);
});
