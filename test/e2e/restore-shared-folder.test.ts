/**
 * DEST_DIR is shared: the natural one is the volume's snapshot folder, where `snapferry snapshot` and the client's
 * timer take snapshots without restore's folder lock, and where a person may write. What appears there while a
 * restore's receive runs is theirs: received or failed, the restore deletes only its own staging subvolume and spool.
 * Before, it deleted every entry new since its receive started, and said nothing (a tester lost a snapshot and a file).
 *
 * The moment is held, not hoped for: once the staging subvolume shows in the folder, the restore's `btrfs receive` is
 * stopped (SIGSTOP) while the others write, then let go on.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { SPOOL_PREFIX } from '../../client/restore/spool.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';

const sharedTest = { ...rootOnly, timeout: 180_000 };

/** s1 pushed (with 48 MiB of random data, so its receive takes a while), then deleted on the client. */
async function world(t: Parameters<typeof createPair>[0]) {
  const pair = await createPair(t, { fillMB: 1, seed: 'shared-folder' });
  await fs.writeFile(path.join(pair.source, 'random.bin'), crypto.randomBytes(48 * 1024 * 1024));
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  // Kept aside (a writable snapshot elsewhere) to compare the restored tree with.
  const original = path.join(pair.client.mountPoint, 'original');
  await btrfs.snapshot(s1, original);
  await btrfs.deleteSubvolume(s1);
  return { pair, server, original };
}

/**
 * Waits for the restore's staging subvolume in `dir`, stops its `btrfs receive` (a child of this process), runs
 * `meanwhile`, and lets the receive go on.
 */
async function duringReceive(dir: string, meanwhile: () => Promise<void>): Promise<void> {
  await until('the staging subvolume', async () => (await fs.readdir(dir)).some((n) => n.startsWith('.snapferry-incoming-')), 60_000, 2);
  const pids = (await execa('pgrep', ['-P', String(process.pid), '-f', '^btrfs receive'], { reject: false })).stdout.split('\n').filter(Boolean).map(Number);
  assert.equal(pids.length, 1, 'the restore\'s btrfs receive runs');
  process.kill(pids[0]!, 'SIGSTOP');
  try {
    await meanwhile();
  } finally {
    process.kill(pids[0]!, 'SIGCONT');
  }
}

/** What `snapferry snapshot` (or the timer's run) and a person do in the folder while the restore receives. */
async function othersWrite(source: string, dir: string): Promise<void> {
  await btrfs.snapshot(source, path.join(dir, 's.Y'), { readonly: true });
  await fs.writeFile(path.join(dir, 'NOTES.txt'), 'note\n');
}

test('a snapshot taken and a file written in DEST_DIR while the restore receives are still there after it', sharedTest, async (t) => {
  const { pair, server, original } = await world(t);
  const restored = restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: pair.snaps, retries: 0 }, recordingReporter());
  await duringReceive(pair.snaps, () => othersWrite(pair.source, pair.snaps));
  const done = await restored;
  assert.equal(done.restored, true);
  assert.deepEqual((await fs.readdir(pair.snaps)).sort(), ['NOTES.txt', 's.Y', 's1']);
  assert.equal(await fs.readFile(path.join(pair.snaps, 'NOTES.txt'), 'utf8'), 'note\n');
  assert.equal((await btrfs.subvolumeShow(path.join(pair.snaps, 's.Y'))).readonly, true);
  await assertReceived(original, path.join(pair.snaps, 's1'));
});

test('a restore whose receive fails keeps what others wrote in DEST_DIR meanwhile, and leaves nothing of its own', sharedTest, async (t) => {
  const { pair, server } = await world(t);
  const restored = restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: pair.snaps, retries: 0 }, recordingReporter()).then(
    () => null,
    (err: unknown) => err as Error & { code?: string },
  );
  await duringReceive(pair.snaps, async () => {
    await othersWrite(pair.source, pair.snaps);
    // The spool damaged on disk behind the receive: its last MiB no longer matches the frames' digests.
    const spool = (await fs.readdir(pair.snaps)).find((n) => n.startsWith(SPOOL_PREFIX))!;
    const frames = await fs.open(path.join(pair.snaps, spool, 'frames'), 'r+');
    try {
      const { size } = await frames.stat();
      await frames.write(Buffer.alloc(1024 * 1024), 0, 1024 * 1024, size - 1024 * 1024);
    } finally {
      await frames.close();
    }
  });
  const err = await restored;
  assert.ok(err, 'the restore failed');
  t.diagnostic(`failed with ${err.code ?? ''}: ${err.message}`);
  const left = (await fs.readdir(pair.snaps)).filter((n) => !n.startsWith(SPOOL_PREFIX)).sort();
  assert.deepEqual(left, ['NOTES.txt', 's.Y'], 'no partial snapshot, and both of the others\' entries');
  assert.equal(await fs.readFile(path.join(pair.snaps, 'NOTES.txt'), 'utf8'), 'note\n');
});
