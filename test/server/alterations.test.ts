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
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: 'client-uuid', readonly: true }), { kind: 'intact' });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: 'client-uuid', readonly: false }), { kind: 'altered', what: ['not_read_only'] });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: null, readonly: false }), { kind: 'altered', what: ['not_read_only', 'received_uuid_lost'] });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'server-uuid', receivedUuid: null, readonly: true }), { kind: 'altered', what: ['received_uuid_lost'] });
  // Another subvolume under the name: not ours to flag, it replaced ours.
  assert.deepEqual(judgeSnapshot(record, { uuid: 'other', receivedUuid: null, readonly: true }), { kind: 'gone', reason: 'replaced on disk by another subvolume' });
  assert.deepEqual(judgeSnapshot(record, { uuid: 'other', receivedUuid: 'someone-else', readonly: true }), { kind: 'gone', reason: 'replaced on disk by another subvolume' });
  assert.deepEqual(judgeSnapshot(record, null), { kind: 'gone', reason: 'deleted from disk' });
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
