/**
 * A snapshot adopted from the disk without its transfer (the catalog rebuilt, server/reconcile.ts) has only its
 * Received UUID, namespacedUuid(client, u). The catalog learns u from what the client names, and only on proof (its
 * namespaced UUID is the Received UUID); and at start from the name of the snapshot's saved digest, which is then
 * kept. Before, the sweep at start dropped that digest: no record's UUID was its name.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Catalog, type SnapshotRecord } from '../../server/catalog.ts';
import { ServerLayout } from '../../server/layout.ts';
import { namespacedUuid, toClientMap, toDiskMap } from '../../server/uuid-namespace.ts';
import { SavedDigests } from '../../server/verify/saved-digests.ts';
import type { SafeName, Uuid } from '../../core/names.ts';

const u = '434d0b3e-3a51-4f4e-9a6b-1f2e3d4c5b6a';
const stranger = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';

async function adopted(t: { after(fn: () => Promise<void>): void }) {
  const root = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-adopted-'));
  t.after(() => fs.rm(root, { recursive: true, force: true }));
  const layout = new ServerLayout(root);
  const catalog = await Catalog.open(layout.catalog);
  const onDisk = namespacedUuid('alice', u);
  const record: SnapshotRecord = {
    client: 'alice', volume: 'home', name: 's1', uuid: onDisk, uuidUnknown: true, receivedUuid: onDisk, serverUuid: stranger,
    parentUuid: null, receivedAt: new Date().toISOString(), rawBytes: 0, wireBytes: 0, transferId: null, createdAt: null, takenAt: null, altered: null,
  };
  await catalog.addSnapshot(record);
  return { layout, catalog, onDisk };
}

test('the catalog learns an adopted snapshot\'s client UUID only from a UUID whose namespaced one is its Received UUID, and keeps it', async (t) => {
  const { layout, catalog, onDisk } = await adopted(t);
  // Before: a restore would carry the Received UUID; the namespaced UUID maps to the subvolume all the same.
  assert.equal(toClientMap(catalog, 'alice')(onDisk), onDisk);
  assert.equal(toDiskMap(catalog, 'alice')(u), onDisk);
  assert.deepEqual(await catalog.learnUuids('alice', [stranger, null]), []);
  assert.deepEqual(await catalog.learnUuids('bob', [u]), [], 'another client\'s UUID u is another namespace');
  const [learnt] = await catalog.learnUuids('alice', [stranger, u]);
  assert.deepEqual({ uuid: learnt?.uuid, uuidUnknown: learnt?.uuidUnknown }, { uuid: u, uuidUnknown: undefined });
  assert.equal(toClientMap(catalog, 'alice')(onDisk), u);
  assert.equal(toDiskMap(catalog, 'alice')(u), onDisk);
  const reopened = await Catalog.open(layout.catalog);
  assert.equal(reopened.snapshots('alice', 'home')[0]?.uuid, u, 'kept on disk');
});

test('at start, a saved digest named by an adopted snapshot\'s client UUID teaches the catalog that UUID and stays', async (t) => {
  const { layout, catalog } = await adopted(t);
  const digest = layout.digestFile('alice' as SafeName, 'home' as SafeName, u as Uuid);
  const other = layout.digestFile('alice' as SafeName, 'home' as SafeName, stranger as Uuid);
  await fs.mkdir(path.dirname(digest), { recursive: true });
  await fs.writeFile(digest, 'digest');
  await fs.writeFile(other, 'digest');
  assert.equal(await new SavedDigests(layout).sweep(catalog), 1);
  await fs.access(digest);
  await assert.rejects(fs.access(other), 'a digest of no snapshot goes');
  assert.equal(catalog.snapshots('alice', 'home')[0]?.uuid, u);
});
