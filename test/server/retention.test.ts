import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Catalog, type TransferRecord } from '../../server/catalog.ts';
import { catalogVolumes, describeServerPlans, planVolume, snapshotTime } from '../../server/retention.ts';
import type { TransferState } from '../../core/protocol.ts';

async function catalogWith(t: { after(fn: () => Promise<void>): void }, names: string[], client = 'laptop', volume = 'home'): Promise<Catalog> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-retention-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const catalog = await Catalog.open(path.join(dir, 'catalog.json'));
  // Received in the order given, one minute apart.
  for (const [i, name] of names.entries()) {
    await catalog.addSnapshot({
      client, volume, name, uuid: `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`, serverUuid: `server-${name}`, parentUuid: null,
      receivedAt: new Date(Date.UTC(2026, 5, 1, 0, i)).toISOString(), rawBytes: 1, wireBytes: 1, transferId: null, altered: null,
    });
  }
  return catalog;
}

function transfer(id: string, state: TransferState, parentUuid: string | null, volume = 'home'): TransferRecord {
  const at = new Date().toISOString();
  return {
    id, client: 'laptop', volume, snapshot: `new-${id}`, uuid: `11111111-0000-0000-0000-00000000000${id.length}`, parentUuid, state,
    createdAt: at, updatedAt: at, chunkSize: 1 << 20, rawEstimate: null, error: null, lastInterruption: null, interruptions: 0,
    sendStream: 'v1', wireBytes: null, rawBytes: null, framesVerified: null, wait: null,
  };
}

const names = ['home.20260101T000000Z', 'home.20260102T000000Z', 'home.20260103T000000Z', 'home.20260104T000000Z'];
const last1 = () => ({ last: 1 });

test("a snapshot's time is the one in its name, else when it was received", () => {
  assert.equal(snapshotTime({ name: 'home.20260102T030405Z', receivedAt: '2026-06-01T00:00:00.000Z' }).toISOString(), '2026-01-02T03:04:05.000Z');
  assert.equal(snapshotTime({ name: 's1', receivedAt: '2026-06-01T00:00:00.000Z' }).toISOString(), '2026-06-01T00:00:00.000Z');
});

test('the newest received snapshot is kept whatever the policy', async (t) => {
  const catalog = await catalogWith(t, names);
  const { plan, busy } = planVolume(catalog, () => ({ hourly: 2 }), 'laptop', 'home');
  assert.equal(busy, null);
  assert.deepEqual(plan.keep.map((k) => [k.name, k.reasons]), [
    [names[2], ['hourly 2026-01-03T00 (first of the hour)']],
    [names[3], ['newest received snapshot: the parent of the next incremental', 'hourly 2026-01-04T00 (first of the hour)']],
  ]);
  const none = planVolume(catalog, () => ({ last: 0, daily: 0 }), 'laptop', 'home');
  assert.deepEqual(none.plan.keep.map((k) => k.name), [names[3]]);
});

test('a newest snapshot changed by hand on the server is no parent: the newest intact one is kept as the next parent', async (t) => {
  const catalog = await catalogWith(t, names);
  await catalog.markAltered(catalog.snapshots('laptop', 'home').find((s) => s.name === names[3])!, ['not_read_only']);
  const { plan } = planVolume(catalog, () => ({ last: 0, daily: 0 }), 'laptop', 'home');
  assert.deepEqual(plan.keep.map((k) => [k.name, k.reasons]), [
    [names[2], ['newest snapshot not changed by hand: the parent of the next incremental']],
    [names[3], ['newest received snapshot (changed by hand here: never a parent)']],
  ]);
  assert.deepEqual(plan.delete.map((d) => d.name), [names[0], names[1]]);
});

test('when the newest received and the newest taken differ (an adopted snapshot), both are kept', async (t) => {
  // Received last, but named as the oldest.
  const catalog = await catalogWith(t, [names[1]!, names[2]!, names[0]!]);
  const { plan } = planVolume(catalog, () => ({ last: 0, daily: 0 }), 'laptop', 'home');
  assert.deepEqual(plan.keep.map((k) => k.name), [names[0], names[2]]);
  assert.deepEqual(plan.delete.map((d) => d.name), [names[1]]);
});

test('the parent an upload in progress names is kept; a failed upload protects nothing', async (t) => {
  const catalog = await catalogWith(t, names);
  const [first, second] = catalog.snapshots('laptop', 'home');
  await catalog.putTransfer(transfer('up', 'uploading', first!.uuid));
  await catalog.putTransfer(transfer('gone', 'failed', second!.uuid));
  const { plan } = planVolume(catalog, last1, 'laptop', 'home');
  assert.deepEqual(plan.keep.map((k) => k.name), [names[0], names[3]]);
  assert.deepEqual(plan.keep[0]!.reasons, ['parent of upload up in progress']);
  assert.deepEqual(plan.delete.map((d) => d.name), [names[1], names[2]]);
});

test('a volume with a receive under way is left alone; others are planned', async (t) => {
  const catalog = await catalogWith(t, names);
  await catalog.putTransfer(transfer('rx', 'receiving', null));
  const busy = planVolume(catalog, last1, 'laptop', 'home');
  assert.match(busy.busy ?? '', /transfer rx of new-rx is receiving/);
  assert.equal(busy.plan.delete.length, 0);
  assert.deepEqual(describeServerPlans(catalog, last1), ['laptop/home: left alone: transfer rx of new-rx is receiving']);
});

test('prune-server --dry-run lines: per volume, with the policy of each (or none)', async (t) => {
  const catalog = await catalogWith(t, names);
  await catalog.addSnapshot({ ...catalog.snapshots('laptop', 'home')[0]!, volume: 'etc', name: 'etc.20260101T000000Z', uuid: '22222222-0000-0000-0000-000000000000' });
  assert.deepEqual(catalogVolumes(catalog), [['laptop', 'etc'], ['laptop', 'home']]);
  const lines = describeServerPlans(catalog, (_client, volume) => (volume === 'home' ? { last: 2 } : {}));
  assert.deepEqual(lines, [
    'laptop/etc: no retention policy, all 1 kept',
    'laptop/home: would delete 2, keep 2',
    `  delete ${names[0]}`,
    `  delete ${names[1]}`,
    `  keep   ${names[2]}  (one of the last 2)`,
    `  keep   ${names[3]}  (newest received snapshot: the parent of the next incremental; one of the last 2)`,
    `  note: dated by the time in their names, read as UTC (catalogued before clients sent the time a snapshot was taken): ${names.join(', ')}`,
  ]);
});

test("a snapshot's time is the one its client sent, over its name and its arrival; older records say how they are dated", async (t) => {
  // A backlog that arrived within four minutes, its names without a date btrbk or we would write.
  const catalog = await catalogWith(t, ['a', 'b', 'c', 'd', 'legacy']);
  const taken = ['2026-11-01T01:00:00.000Z', '2026-11-02T01:00:00.000Z', '2026-11-03T01:00:00.000Z', '2026-11-04T01:00:00.000Z'];
  for (const [i, s] of catalog.snapshots('laptop', 'home').slice(0, 4).entries()) await catalog.addSnapshot({ ...s, takenAt: taken[i]! });
  const now = new Date('2026-12-01T00:00:00Z');
  const { plan, notes } = planVolume(catalog, () => ({ daily: 2 }), 'laptop', 'home', now);
  // 'legacy' arrived last (June 2026) and has no time of its own: it is dated by its arrival, the newest day.
  assert.deepEqual(plan.keep.map((k) => [k.name, k.time.toISOString()]), [['legacy', '2026-06-01T00:04:00.000Z'], ['c', taken[2]], ['d', taken[3]]]);
  assert.deepEqual(plan.delete.map((d) => d.name), ['a', 'b']);
  assert.deepEqual(notes, ['dated by when they arrived (catalogued before clients sent the time a snapshot was taken, and no time in their names): legacy']);
});
