/** What the disk says of a received snapshot (server/alterations.ts), and the catalog's flag that stays once set. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { judgeSnapshot } from '../../server/alterations.ts';
import { Catalog } from '../../server/catalog.ts';

const record = { uuid: 'client-uuid', serverUuid: 'server-uuid' };

test('intact, altered (each way and both), or gone: judged from the subvolume as btrfs shows it', () => {
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: 'client-uuid', readonly: true, ctransid: null }), { kind: 'intact' });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: 'client-uuid', readonly: false, ctransid: null }), { kind: 'altered', what: ['not_read_only'] });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: null, readonly: false, ctransid: null }), { kind: 'altered', what: ['not_read_only', 'received_uuid_lost'] });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: null, readonly: true, ctransid: null }), { kind: 'altered', what: ['received_uuid_lost'] });
  // Another subvolume under the name: not ours to flag, it replaced ours.
  assert.deepEqual(judgeSnapshot(record, { uuid: 'other', receivedUuid: null, readonly: true, ctransid: null }), { kind: 'gone', reason: 'replaced on disk by another subvolume' });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'other', receivedUuid: 'someone-else', readonly: true, ctransid: null }), { kind: 'gone', reason: 'replaced on disk by another subvolume' });
  assert.deepEqual(judgeSnapshot(record, null), { kind: 'gone', reason: 'deleted from disk' });
});

test('changed since its receive with its flags as they were: told by its ctransid; a record from before it was kept is not called changed', () => {
  const shown = { uuid: 'server-uuid', receivedUuid: 'client-uuid', readonly: true };
  const received = { ...record, ctransid: 40 };
  assert.deepEqual(judgeSnapshot(received, { ...shown, ctransid: 40 }), { kind: 'intact' });
  assert.deepEqual(judgeSnapshot(received, { ...shown, ctransid: 57 }), { kind: 'altered', what: ['changed_since_received'] });
  assert.deepEqual(judgeSnapshot(received, { ...shown, readonly: false, ctransid: 57 }), { kind: 'altered', what: ['not_read_only', 'changed_since_received'] });
  // Unread (a writable subvolume, which btrfs send refuses): nothing to compare.
  assert.deepEqual(judgeSnapshot(received, { ...shown, ctransid: null }), { kind: 'intact' });
  assert.deepEqual(judgeSnapshot(record, { ...shown, ctransid: 57 }), { kind: 'intact' });
});

test('a catalog written before ctransids were kept loads, and each record learns its own once, never over one it has', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-ctransid-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'catalog.json');
  const old = { client: 'default', volume: 'home', uuid: 'u', serverUuid: 's', parentUuid: null, receivedAt: '2026-01-01T00:00:00.000Z', rawBytes: 1, wireBytes: 1, transferId: null, altered: null };
  await fs.writeFile(file, JSON.stringify({ version: 1, transfers: [], snapshots: [{ ...old, name: 's1' }, { ...old, name: 's2', uuid: 'u2', ctransid: 9 }], removed: [] }));
  const catalog = await Catalog.open(file);
  const [s1, s2] = catalog.snapshots('default');
  assert.deepEqual([s1?.ctransid, s2?.ctransid], [undefined, 9]);
  await catalog.noteCtransid(s1!, 12);
  await catalog.noteCtransid(s2!, 13);
  await catalog.noteCtransid(catalog.snapshots('default')[0]!, 14);
  assert.deepEqual((await Catalog.open(file)).snapshots('default').map((s) => [s.name, s.ctransid, s.altered]), [['s1', 12, null], ['s2', 9, null]]);
});

test('the flag stays once set and gathers what is found later; its first finding keeps its time; it survives a reopen', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-altered-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'catalog.json');
  const catalog = await Catalog.open(file);
  await catalog.addSnapshot({
    client: 'default', volume: 'home', name: 's1', uuid: 'client-uuid', serverUuid: 'server-uuid', parentUuid: null,
    receivedAt: '2026-01-01T00:00:00.000Z', rawBytes: 1, wireBytes: 1, transferId: null, altered: null,
  });
  const first = await catalog.markAltered(catalog.snapshots('default')[0]!, ['not_read_only']);
  assert.deepEqual(first.altered?.what, ['not_read_only']);
  const again = await catalog.markAltered(first, ['received_uuid_lost']);
  assert.deepEqual(again.altered, { foundAt: first.altered!.foundAt, what: ['not_read_only', 'received_uuid_lost'] });
  const reopened = await Catalog.open(file);
  assert.deepEqual(reopened.snapshots('default')[0]?.altered, again.altered);
});
