/**
 * A clock set back (a dead RTC battery), on real btrfs: a snapshot taken after the ones the server holds is named in
 * the past. By its time alone it was older than the server's newest, so push skipped it ("the server already holds
 * the newer ..."), exit 0, for ever, and `status` said nothing was unsent. btrfs made it after them (its generation
 * is higher, and it was not received), so push's order (core/taken-order.ts) counts it newer: it is sent, on the
 * server's newest, with a note, and status and prune see it as push does.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutate, rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { gatherStatus } from '../../client/status/data.ts';
import { pruneLocal } from '../../client/run/prune.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const [D1, D2] = ['data.20261204T010000Z', 'data.20261205T010000Z'];
const SET_BACK = 'data.20000101T010000Z';

test('a snapshot taken after the clock was set back is pushed, on the newest the server holds', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 2, seed: 'clock-set-back' });
  const server = await pair.startServer();
  await pair.snapshot(D1);
  await mutate(pair.source, 'v2');
  await pair.snapshot(D2);
  await push({ server: server.url, volume: 'data', snapshots: [pair.snaps], retries: 0 }, recordingReporter());
  await mutate(pair.source, 'v3-after-the-battery-died');
  const setBack = await pair.snapshot(SET_BACK);

  const api = new ServerApi({ server: server.url });
  const status = await gatherStatus(api, server.url, { data: pair.snaps });
  assert.deepEqual(status.volumes.map((v) => v.local), [{ dir: pair.snaps, snapshots: 3, newest: SET_BACK, notOnServer: 1 }]);
  // Prune keeps it (push sends it) and the parent push takes.
  const pruned = await pruneLocal(api, 'data', { snapshotDir: pair.snaps, retention: { last: 1 } }, { dryRun: true });
  assert.deepEqual(pruned.deleted, [D1], pruned.plan.keep.map((k) => `${k.name}: ${k.reasons.join('; ')}`).join('\n'));

  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'data', snapshots: [pair.snaps], retries: 0 }, report);
  assert.deepEqual(result.skipped, [], report.notes.join('\n'));
  assert.deepEqual(result.sent.map((s) => [s.parent, s.snapshot]), [[D2, SET_BACK]]);
  assert.match(report.notes.join('\n'), /data\.20000101T010000Z is dated 2000-01-01T01:00:00\.000Z, before data\.20261205T010000Z .*was the clock set back\?/);
  await assertReceived(setBack, pair.receivedPath('data', SET_BACK));
  // The server dates it no earlier than the snapshot it came after: by its name its retention would take the newest
  // backup for the oldest of all.
  const listed = (await api.snapshots('data')).snapshots;
  const takenAt = (name: string) => listed.find((s) => s.name === name)?.takenAt;
  assert.equal(takenAt(SET_BACK), takenAt(D2));
  assert.equal(takenAt(D2), '2026-12-05T01:00:00.000Z');
});
