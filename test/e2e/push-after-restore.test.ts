/**
 * A snapshot restored into the folder push reads is as old as when it was taken, not as the restore that made it
 * (core/taken-order.ts), on real btrfs: the restore gives it the filesystem's newest generation, and push used to
 * take that for its age. It then skipped the newer snapshot the server lacked ("the server already holds the newer
 * ...", exit 0, the new work never backed up) and `status` named the restored one the newest here.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { ServerApi } from '../../client/http/api.ts';
import { gatherStatus } from '../../client/status/data.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const [T1000, T1100, T1200] = ['data.20261205T1000', 'data.20261205T1100', 'data.20261205T1200'];

test('an older snapshot restored into the folder: the newer one the server lacks is sent, on the newest common by time taken', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'push-after-restore' });
  const server = await pair.startServer();
  const s1000 = await pair.snapshot(T1000);
  await mutate(pair.source, 'v2');
  const s1100 = await pair.snapshot(T1100);
  await push({ server: server.url, volume: 'data', snapshots: [pair.snaps], retries: 0 }, recordingReporter());
  await mutate(pair.source, 'v3-new-work');
  const s1200 = await pair.snapshot(T1200);
  await btrfs.deleteSubvolume(s1100);

  const restored = await restore({ server: server.url, volume: 'data', snapshot: T1100, destDir: pair.snaps, retries: 0 }, recordingReporter());
  assert.equal(restored.parent, T1000, 'an incremental restore, on the original 1000');
  const [older, back, newer] = await Promise.all([s1000, restored.path, s1200].map((p) => btrfs.subvolumeShow(p)));
  assert.ok(back!.genAtCreation > newer!.genAtCreation && newer!.genAtCreation > older!.genAtCreation, 'the restore is the newest subvolume here');

  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'data', snapshots: [pair.snaps], retries: 0 }, report);
  assert.deepEqual(result.skipped, [], report.notes.join('\n'));
  assert.deepEqual(result.sent.map((s) => [s.parent, s.snapshot]), [[T1100, T1200]]);
  assert.deepEqual(result.present, [T1000, T1100]);
  await assertReceived(s1200, pair.receivedPath('data', T1200));

  const status = await gatherStatus(new ServerApi({ server: server.url }), server.url, { data: pair.snaps });
  assert.deepEqual(status.volumes.map((v) => v.local), [{ dir: pair.snaps, snapshots: 3, newest: T1200, notOnServer: 0 }]);
});
