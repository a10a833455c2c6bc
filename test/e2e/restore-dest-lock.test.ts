/**
 * One restore at a time into a DEST_DIR (client/restore/dest-lock.ts): two restores of one snapshot there would share
 * a spool and a staging name, and each delete what the other is receiving under it. The second stops before it writes anything, with `dest_busy` (exit 73), and says what to do.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { exitCodeFor } from '../../client/exit-codes.ts';
import { execa } from 'execa';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const CHUNK = 64 * 1024;

/** Until `flock` holds the folder (a nonblocking try of our own fails). */
async function waitHeld(dir: string): Promise<void> {
  // By the clock, not a count of tries: on a loaded machine each try's spawn alone can take a good part of a second.
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if ((await execa('flock', ['--exclusive', '--nonblock', dir, 'true'], { reject: false })).exitCode === 1) return;
    await new Promise((r) => setTimeout(r, 25));
  }
  throw new Error(`flock never took ${dir} within 60 s`);
}

test('a restore into a DEST_DIR another restore holds stops with dest_busy (exit 73) and writes nothing there', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  const options = { server: server.url, volume: 'v', snapshot: 's1', destDir: dest, chunkSize: CHUNK, backoff: { baseMs: 50, maxMs: 200 }, stallMs: 5000 };

  // The first restore, as it holds the folder: another process with flock(2) on DEST_DIR, as util-linux takes it.
  // `cat` holds it until its input ends. It waits for the lock rather than giving up: the probe below takes the
  // same lock for a moment, and a holder started with --nonblock that met it gave up and left nothing to find.
  const first = execa('flock', ['--exclusive', dest, 'cat'], { reject: false, stdin: 'pipe', stdout: 'ignore' });
  t.after(() => void first.stdin?.end());
  await waitHeld(dest);
  await assert.rejects(restore(options, recordingReporter()), (err: Error & { code?: string; retryable?: boolean }) => {
    assert.equal(err.code, 'dest_busy', err.message);
    assert.equal(exitCodeFor(err), 73);
    assert.equal(err.retryable, true);
    assert.equal(err.message, `another restore is receiving into ${dest} (it holds the folder's lock); wait for it to finish, or restore into another folder`);
    return true;
  });
  assert.deepEqual(await fs.readdir(dest), [], 'the second restore wrote in the folder the first holds');

  first.stdin?.end();
  assert.equal((await first).exitCode, 0);
  const done = await restore(options, recordingReporter());
  assert.equal(done.restored, true);
  await assertReceived(s1, path.join(dest, 's1'));
  assert.deepEqual(await fs.readdir(dest), ['s1'], 'the lock leaves nothing in the folder, and the spool is gone');
});
