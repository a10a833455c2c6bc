/**
 * A parent changed on the client after it was pushed into the archive (made writable, written to, made read-only
 * again), end to end on a real RGW and real btrfs: an incremental from it describes the new snapshot as changes from
 * the parent as it is now, while the archive holds the parent as it was sent. Stored as it came, the push said
 * nothing, and a restore of the chain gave a snapshot that differs from the client's. The archive now records the
 * ctransid each stream was sent at (frame 0's first command; the client's declaration for a sealed stream), refuses
 * an incremental whose parent's ctransid moved since (`parent_changed`, at frame 0, the transfer failed), and push
 * sends the snapshot around that parent, as it does against a btrfs server (test/e2e/changed-parent.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createBtrfs, mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { ServerApi } from '../../client/http/api.ts';
import { generateKeyFile } from '../../core/crypto/key-file.ts';
import { archiveServer, sharedS3 } from '../archive/store-fixture.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const rgw = sharedS3();

async function keyFile(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-archive-changed-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'archive.key');
  await generateKeyFile(key);
  return key;
}

/** A fresh btrfs folder to restore into. */
async function freshDest(t: { after(fn: () => unknown): void }): Promise<string> {
  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  return dest;
}

/** What the tester did to P: writable, one file rewritten, read-only again. */
async function changeParent(parent: string, file: string, text: string): Promise<void> {
  await execa('btrfs', ['property', 'set', '-ts', parent, 'ro', 'false']);
  await fs.writeFile(path.join(parent, file), text);
  await execa('btrfs', ['property', 'set', '-ts', parent, 'ro', 'true']);
}

for (const sealed of [false, true]) {
  const kind = sealed ? 'sealed' : 'plain';
  test(`${kind}: a parent changed after it was pushed into the archive, its change reflinked into the source: s2 is sent around it, and restores as it is here`, { ...rootOnly, timeout: 240_000 }, async (t) => {
    const pair = await createPair(t, { fillMB: 1, seed: `archive-changed-parent-${kind}` });
    const bucket = await rgw.bucket();
    const server = await archiveServer(t, bucket, 'changed');
    const encrypt = sealed ? { encrypt: await keyFile(t) } : {};
    await fs.writeFile(path.join(pair.source, 'new.txt'), 'old content\n');
    const s1 = await pair.snapshot('s1');
    await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0, ...encrypt }, recordingReporter());

    await changeParent(s1, 'new.txt', 'CHANGED IN PARENT\n');
    // The same inode in the source, sharing s1's new extent: btrfs send from s1 finds nothing to send for it.
    await execa('cp', ['--reflink=always', path.join(s1, 'new.txt'), path.join(pair.source, 'new.txt')]);
    const s2 = await pair.snapshot('s2');
    const report = recordingReporter();
    const result = await push({ server: server.url, volume: 'v', snapshots: [s2], retries: 0, ...encrypt }, report);
    // Before: s2 was stored as an incremental on s1, the push said nothing, and its restore held "old content".
    assert.deepEqual(result.sent.map((x) => [x.snapshot, x.parent]), [['s2', null]], `no intact parent is left: s2 goes in full\n${report.notes.join('\n')}`);
    const why = report.notes.filter((n) => /parent_changed/.test(n));
    assert.equal(why.length, 1, report.notes.join('\n'));
    assert.match(why[0]!, /^s2: not sent on s1: s1 on this machine was changed after it was sent.*sending it in full instead$/);

    // The archive's listing says what it refused, as core/plan.ts's changedParents reads it: a failed transfer.
    const api = new ServerApi({ server: server.url });
    const refused = (await api.transfers()).transfers.filter((x) => x.error?.code === 'parent_changed');
    assert.deepEqual(refused.map((x) => [x.snapshot, x.state]), [['s2', 'failed']]);
    assert.match(refused[0]!.error!.message, /the client's s1, the parent of this incremental, was changed after it was sent/);

    const dest = await freshDest(t);
    const restored = await restore({ server: server.url, volume: 'v', snapshot: 's2', destDir: dest, retries: 0, ...encrypt }, recordingReporter());
    assert.equal(restored.restored, true);
    assert.equal(await fs.readFile(path.join(dest, 's2', 'new.txt'), 'utf8'), 'CHANGED IN PARENT\n');
    await assertReceived(s2, path.join(dest, 's2'));

    // The next push builds on s2 and never tries s1 again.
    await fs.writeFile(path.join(pair.source, 'after.txt'), 'after\n');
    const s3 = await pair.snapshot('s3');
    const next = recordingReporter();
    const again = await push({ server: server.url, volume: 'v', snapshots: [s3], retries: 0, ...encrypt }, next);
    assert.deepEqual(again.sent.map((x) => [x.snapshot, x.parent]), [['s3', 's2']]);
    assert.deepEqual(next.notes.filter((n) => /parent_changed/.test(n)), []);
  });
}

test('a parent restored from the archive into the snapshot folder is not judged: its ctransid is the copy\'s own, and the incremental on it is stored and restores', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'archive-changed-parent-restored' });
  const bucket = await rgw.bucket();
  const server = await archiveServer(t, bucket, 'changed');
  const [T1, T2, T3] = ['v.20261205T1000', 'v.20261205T1100', 'v.20261205T1200'];
  await pair.snapshot(T1);
  await mutate(pair.source, 'v2');
  const s2 = await pair.snapshot(T2);
  await push({ server: server.url, volume: 'v', snapshots: [pair.snaps], retries: 0 }, recordingReporter());
  await mutate(pair.source, 'v3');
  const s3 = await pair.snapshot(T3);
  await btrfs.deleteSubvolume(s2);
  const back = await restore({ server: server.url, volume: 'v', snapshot: T2, destDir: pair.snaps, retries: 0 }, recordingReporter());
  assert.equal(back.restored, true);

  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [pair.snaps], retries: 0 }, report);
  assert.deepEqual(result.sent.map((x) => [x.snapshot, x.parent]), [[T3, T2]], report.notes.join('\n'));
  assert.deepEqual(report.notes.filter((n) => /parent_changed/.test(n)), []);
  const dest = await freshDest(t);
  await restore({ server: server.url, volume: 'v', snapshot: T3, destDir: dest, retries: 0 }, recordingReporter());
  await assertReceived(s3, path.join(dest, T3));
});
