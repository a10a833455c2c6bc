/**
 * A tester's sequence: a snapshot named in the future (typed by hand, or taken while the clock was wrong) is pushed,
 * then `snapshot` takes two real ones. Before, prune counted the real ones as older than "the newest both sides hold"
 * and deleted the first although the server never had it, `snapshot` found nothing due until 2030, and push skipped
 * both as older than the newest the server holds. Now all go by core/taken-order.ts, which dates the misnamed one by
 * when btrfs made it.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { pruneLocal } from '../../client/run/prune.ts';
import { takeSnapshot } from '../../client/local/take.ts';
import { createPair, recordingReporter } from './harness.ts';

test('a pushed snapshot named in the future: prune keeps the unpushed ones, snapshot is due, push sends them', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const api = new ServerApi({ server: server.url });
  const future = 'data.20301201T000000Z';
  await pair.snapshot(future);
  await push({ server: server.url, volume: 'data', snapshots: [pair.snaps] }, recordingReporter());

  const hour = 3_600_000;
  const settings = { source: pair.source, snapshotDir: pair.snaps, snapshotEvery: hour };
  const later = await takeSnapshot('data', settings, { dryRun: true, now: new Date(Date.now() + 2 * hour) });
  assert.notEqual(later.taken, null, `two hours on, a snapshot is due (${later.why})`);

  const taken: string[] = [];
  for (let i = 0; i < 2; i++) {
    await sleep(1100); // names are to the second
    taken.push((await takeSnapshot('data', settings, { force: true })).taken!);
  }
  const pruned = await pruneLocal(api, 'data', { snapshotDir: pair.snaps, retention: { last: 1 } }, { dryRun: true });
  assert.deepEqual(pruned.deleted, [], pruned.plan.keep.map((k) => `${k.name}: ${k.reasons.join('; ')}`).join('\n'));
  assert.match(pruned.notes.join('\n'), /data\.20301201T000000Z is dated 2030-12-01T00:00:00\.000Z/);

  const result = await push({ server: server.url, volume: 'data', snapshots: [pair.snaps] }, recordingReporter());
  assert.deepEqual(result.sent.map((s) => [s.snapshot, s.parent]), [[taken[0], future], [taken[1], taken[0]]]);
  const after = await pruneLocal(api, 'data', { snapshotDir: pair.snaps, retention: { last: 1 } });
  assert.deepEqual(after.deleted.sort(), [taken[0], future], 'all on the server now: the policy keeps the last one');
});
