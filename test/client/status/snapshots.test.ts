// `snapferry snapshots`: a snapshot is dated, and ordered, by when it was taken, not by its btrfs creation time (which
// a snapshot that was received or restored has of that moment).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Snapshot } from '../../../core/protocol.ts';
import { listSnapshots, renderSnapshots, snapshotRows } from '../../../client/status/snapshots.ts';
import type { ServerApi } from '../../../client/http/api.ts';
import type { SnapferryError } from '../../../core/errors.ts';
import { EXIT, exitCodeFor } from '../../../client/exit-codes.ts';

function snapshot(name: string, times: { takenAt?: string | null; createdAt?: string | null; receivedAt: string }): Snapshot {
  return { name, uuid: `u-${name}`, serverUuid: `s-${name}`, parentUuid: null, rawBytes: 1, wireBytes: 1, transferId: null, altered: null, ...times };
}

test('rows carry the time each snapshot was taken and go oldest taken first, whatever its creation time', () => {
  const rows = snapshotRows('home', [
    // Restored into the snapshot folder today and pushed again: created today, taken on the 1st.
    snapshot('home.20261201T0100', { takenAt: '2026-12-01T01:00:00.000Z', createdAt: '2026-12-05T22:06:26.000Z', receivedAt: '2026-12-05T22:07:00.000Z' }),
    snapshot('home.20261203T0100', { takenAt: '2026-12-03T01:00:00.000Z', createdAt: '2026-12-03T01:00:00.000Z', receivedAt: '2026-12-03T02:00:00.000Z' }),
  ]);
  assert.deepEqual(rows.map((r) => [r.name, r.takenAt]), [
    ['home.20261201T0100', '2026-12-01T01:00:00.000Z'],
    ['home.20261203T0100', '2026-12-03T01:00:00.000Z'],
  ]);
});

test('a snapshot without a taken time is dated by its creation time, then by its arrival', () => {
  const rows = snapshotRows('home', [
    snapshot('c', { receivedAt: '2026-12-04T00:00:00.000Z' }),
    snapshot('b', { createdAt: '2026-12-02T00:00:00.000Z', receivedAt: '2026-12-05T00:00:00.000Z' }),
    snapshot('a', { takenAt: '2026-12-01T00:00:00.000Z', receivedAt: '2026-12-06T00:00:00.000Z' }),
  ]);
  assert.deepEqual(rows.map((r) => [r.name, r.takenAt]), [['a', '2026-12-01T00:00:00.000Z'], ['b', '2026-12-02T00:00:00.000Z'], ['c', null]]);
});

test('--volume that the server holds nothing of is an error naming the volumes it holds (exit 2); an empty listed volume is not', async () => {
  const api = (volumes: { name: string; snapshots: number }[]) =>
    ({ volumes: async () => ({ client: 'laptop', volumes }), snapshots: async () => ({ snapshots: [], removed: [] }) }) as unknown as ServerApi;
  await assert.rejects(listSnapshots(api([{ name: 'home', snapshots: 2 }, { name: 'etc', snapshots: 1 }]), 'nosuch'), (err: SnapferryError) => {
    assert.equal(err.code, 'volume_not_on_server');
    assert.equal(err.message, 'the server holds nothing of volume nosuch: no such volume, or nothing received into it yet (it holds home, etc); check --volume');
    assert.equal(exitCodeFor(err), EXIT.usage);
    return true;
  });
  await assert.rejects(listSnapshots(api([]), 'home'), /\(it holds no volume of this client\); check --volume$/);
  // Listed with no snapshot (its first upload under way): an empty list, not an error.
  assert.deepEqual(await listSnapshots(api([{ name: 'home', snapshots: 0 }]), 'home'), []);
});

test('a snapshot the server adopted without its size (a catalog rebuilt from its disk) has no size in its row, and the table says unknown, not 0 B', () => {
  const adopted = { ...snapshot('home.20261201T0100', { receivedAt: '2026-12-05T00:00:00.000Z' }), rawBytes: 0, wireBytes: 0, transferId: null };
  const pushed = { ...snapshot('home.20261202T0100', { receivedAt: '2026-12-06T00:00:00.000Z' }), rawBytes: 3 * 1024 * 1024, wireBytes: 1024 * 1024, transferId: 't2' };
  const rows = snapshotRows('home', [adopted, pushed]);
  assert.deepEqual(rows.map((r) => [r.name, r.rawBytes, r.wireBytes]), [['home.20261201T0100', null, null], ['home.20261202T0100', 3 * 1024 * 1024, 1024 * 1024]]);
  const sizes = renderSnapshots(rows).split('\n').map((l) => l.split(/\s{2,}/).at(-1));
  assert.deepEqual(sizes, ['SIZE', 'unknown', '3.0 MiB']);
});
