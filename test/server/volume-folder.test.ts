/**
 * The record of a volume's folder (server/volume-folder.ts) on a real btrfs: what a start after a crash deletes from
 * it, what it keeps, and what it does with a record it cannot read. The whole crash, with a real server killed with
 * kill -9 mid-receive, is in test/e2e/hostile-misc.test.ts.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import type { SafeName } from '../../core/names.ts';
import { ServerLayout } from '../../server/layout.ts';
import { othersInFolder, recordFolder, recoverCutReceives } from '../../server/volume-folder.ts';

const ID = 'a'.repeat(32);
const client = 'default' as SafeName;
const volume = 'v' as SafeName;

async function setUp(t: { after(fn: () => Promise<void>): void }) {
  const fsx = await createBtrfs(t, { sizeMiB: 128 });
  const layout = new ServerLayout(path.join(fsx.mountPoint, 'root'));
  const dir = layout.volumeDir(client, volume);
  await fs.mkdir(dir, { recursive: true });
  await fs.writeFile(path.join(dir, 'admin-note'), 'mine');
  await btrfs.createSubvolume(path.join(dir, 'admin-sub'));
  await fs.mkdir(path.join(dir, 'admin-dir'));
  return { layout, dir };
}

test('a record left by a cut receive: what appeared since goes (files, folders, symlinks, subvolumes, never followed), what was there stays under any name, and so do received snapshots', rootOnly, async (t) => {
  const { layout, dir } = await setUp(t);
  await recordFolder(layout.folderRecordFile(ID), dir, client, volume);
  // What the stream wrote through its own symlinks while it ran.
  await fs.writeFile(path.join(dir, 'stray'), 'theirs');
  await fs.mkdir(path.join(dir, 'stray-dir'));
  await fs.writeFile(path.join(dir, 'stray-dir', 'f'), 'theirs');
  await fs.symlink('admin-note', path.join(dir, 'stray-link'));
  await btrfs.createSubvolume(path.join(dir, 'stray-sub'));
  await fs.rename(path.join(dir, 'admin-dir'), path.join(dir, 'renamed-admin-dir'));
  // A snapshot that took its name just before the crash (the catalog knows it by then: reconcile adopts it first).
  await btrfs.createSubvolume(path.join(dir, 'snap'));

  const cut = await recoverCutReceives(layout, (c, v) => (c === client && v === volume ? ['snap'] : []));
  assert.deepEqual(cut.map((c) => [c.transferId, c.client, c.volume, c.removed.sort()]), [[ID, client, volume, ['stray', 'stray-dir', 'stray-link', 'stray-sub']]]);
  assert.deepEqual((await fs.readdir(dir)).sort(), ['admin-note', 'admin-sub', 'renamed-admin-dir', 'snap']);
  assert.equal(await fs.readFile(path.join(dir, 'admin-note'), 'utf8'), 'mine', 'the symlink to it was deleted, not followed');
  assert.deepEqual(await fs.readdir(layout.receiving), [], 'the record is gone');
  assert.deepEqual(await recoverCutReceives(layout, () => []), [], 'and the next start finds nothing to do');
});

test('a record that cannot be read deletes nothing, and goes; a temporary one a crash left goes; a record still there when the same transfer receives again stands', rootOnly, async (t) => {
  const { layout, dir } = await setUp(t);
  await fs.mkdir(layout.receiving, { recursive: true });
  await fs.writeFile(layout.folderRecordFile(ID), '{"version":1,"client":"default","volume":"v","entries":[');
  await fs.writeFile(`${layout.folderRecordFile('b'.repeat(32))}.tmp`, '{');
  await fs.writeFile(path.join(layout.receiving, 'not-ours'), 'x');
  await fs.writeFile(path.join(dir, 'unknown'), 'kept: nothing says it is a stray');
  assert.deepEqual(await recoverCutReceives(layout, () => []), []);
  assert.deepEqual((await fs.readdir(dir)).sort(), ['admin-dir', 'admin-note', 'admin-sub', 'unknown']);
  assert.deepEqual(await fs.readdir(layout.receiving), ['not-ours']);

  // This transfer's last receive could not clean up: its record says what was there before it, not what is now.
  const first = await recordFolder(layout.folderRecordFile(ID), dir, client, volume);
  await fs.writeFile(path.join(dir, 'stray'), 'theirs');
  const again = await recordFolder(layout.folderRecordFile(ID), dir, client, volume);
  assert.deepEqual([...again].sort(), [...first].sort());
  assert.equal(again.size, 4, 'the stray written since is not in it');
});

test("others in a volume's folder: the catalog's snapshots there, and the staging and final names of the volume's other transfers in progress or still receiving", () => {
  const layout = new ServerLayout('/srv/root');
  const transfer = (id: string, state: string, snapshot: string, volume = 'v') => ({ id, state, snapshot, client: 'default', volume });
  const transfers = [
    transfer(ID, 'uploading', 'mine'),
    transfer('b'.repeat(32), 'uploading', 'next'),
    transfer('c'.repeat(32), 'waiting_for_space', 'waits'),
    transfer('d'.repeat(32), 'failed', 'refused'),
    transfer('e'.repeat(32), 'uploading', 'elsewhere', 'w'),
  ];
  const catalog = {
    snapshots: (c: string, v?: string) => (c === 'default' && v === 'v' ? [{ name: 'home' }] : []),
    transfers: (f: { client?: string; volume?: string } = {}) => transfers.filter((t) => t.client === f.client && t.volume === f.volume),
  } as unknown as Parameters<typeof othersInFolder>[0];
  assert.deepEqual(othersInFolder(catalog, layout, client, volume, ID, () => false), ['home', `.incoming-${'b'.repeat(32)}`, 'next', `.incoming-${'c'.repeat(32)}`, 'waits']);
  // A failed transfer whose receive is still being stopped holds the folder as volume_busy counts it.
  const stopping = othersInFolder(catalog, layout, client, volume, ID, (id) => id === 'd'.repeat(32));
  assert.deepEqual(stopping.slice(-2), [`.incoming-${'d'.repeat(32)}`, 'refused']);
});
