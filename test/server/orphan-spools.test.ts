/** Spools nothing will read again (server/orphan-spools.ts): which they are, and which the sweep deletes when. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ServerLayout } from '../../server/layout.ts';
import { deleteSpool, dueForDeletion, orphansAmong, spoolBytes, spoolsOnDisk, type SpoolOwner } from '../../server/orphan-spools.ts';

const id = (c: string) => c.repeat(32);
const DAY = 86_400_000;
const NOW = Date.parse('2026-12-04T12:00:00Z');

test('orphans: spools of transfers that are over or unknown; a failed one is kept for the expiry period', () => {
  const owners = new Map<string, SpoolOwner>([
    [id('a'), { client: 'laptop', state: 'uploading', updatedAt: new Date(NOW - 30 * DAY).toISOString() }],
    [id('b'), { client: 'laptop', state: 'waiting_for_space', updatedAt: new Date(NOW - 30 * DAY).toISOString() }],
    [id('c'), { client: 'laptop', state: 'failed', updatedAt: new Date(NOW - 8 * DAY).toISOString() }],
    [id('d'), { client: 'laptop', state: 'failed', updatedAt: new Date(NOW - DAY).toISOString() }],
    [id('e'), { client: 'desk', state: 'received', updatedAt: new Date(NOW - 1000).toISOString() }],
    [id('f'), { client: 'desk', state: 'aborted', updatedAt: new Date(NOW - 1000).toISOString() }],
  ]);
  const spools = ['a', 'b', 'c', 'd', 'e', 'f', '0'].map((c) => ({ id: id(c), bytes: 100, mtimeMs: NOW - 10 * DAY }));
  const orphans = orphansAmong(spools, (x) => owners.get(x));
  assert.deepEqual(orphans.map((o) => [o.id[0], o.client, o.state]), [['c', 'laptop', 'failed'], ['d', 'laptop', 'failed'], ['e', 'desk', 'received'], ['f', 'desk', 'aborted'], ['0', null, null]],
    'uploads and waiting streams are never orphans');
  assert.equal(orphans[1]!.idleSinceMs, NOW - DAY, 'dated by the newer of its transfer and its files');
  assert.deepEqual(dueForDeletion(orphans, NOW, 7 * DAY).map((o) => o.id[0]), ['c', 'e', 'f', '0']);
  assert.deepEqual(dueForDeletion(orphans, NOW, 0).map((o) => o.id[0]), ['e', 'f', '0'], 'no expiry: failed ones wait for an abort');
});

test('spools on disk: each upload with all its files, and deleting them all', async (t) => {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-orphans-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const layout = new ServerLayout(root);
  await fs.mkdir(layout.spool);
  await fs.writeFile(layout.spoolFile(id('a')), Buffer.alloc(1000));
  await fs.writeFile(layout.uploadRecordFile(id('a')), '{}');
  await fs.writeFile(layout.frameIndexFile(id('a')), Buffer.alloc(72));
  // tus's record alone, its spool file gone: still an upload's leftovers.
  await fs.writeFile(layout.uploadRecordFile(id('b')), '{}');
  await fs.writeFile(path.join(layout.spool, 'not-an-upload'), 'x');
  const found = (await spoolsOnDisk(layout)).sort((x, y) => x.id.localeCompare(y.id));
  assert.deepEqual(found.map((s) => [s.id, s.bytes]), [[id('a'), 1074], [id('b'), 2]]);
  assert.equal(await spoolBytes(layout, id('a')), 1074);
  await deleteSpool(layout, id('a'));
  await deleteSpool(layout, id('a'));
  assert.equal(await spoolBytes(layout, id('a')), 0);
  assert.deepEqual((await fs.readdir(layout.spool)).sort(), [`${id('b')}.json`, 'not-an-upload']);
});
