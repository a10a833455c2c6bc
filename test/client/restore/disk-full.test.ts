/**
 * What a restore that fills its disk says it needs (client/restore/disk-full.ts). The catalog's sizes are the push's
 * stream: on the push's own parent they are the restore's too; a full restore of a snapshot pushed as an incremental
 * is not that incremental, and the incremental's size is not what the snapshot holds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import os from 'node:os';
import { asRestoreDiskFull, type DiskFullContext } from '../../../client/restore/disk-full.ts';
import { SnapferryError } from '../../../core/errors.ts';
import type { Snapshot } from '../../../core/protocol.ts';

const MiB = 1024 * 1024;
const full = Object.assign(new Error('write: No space left on device'), { code: 'ENOSPC' });

function snapshot(name: string, uuid: string, parentUuid: string | null, rawBytes: number): Snapshot {
  return { name, uuid, serverUuid: `s-${uuid}`, parentUuid, receivedAt: '2026-12-06T00:00:00Z', rawBytes, wireBytes: rawBytes / 2, transferId: null, altered: null };
}

const base = snapshot('home.1', 'u1', null, 400 * MiB);
/** Pushed as a 60 MiB incremental on home.1. */
const inc = snapshot('home.X', 'u2', 'u1', 60 * MiB);

async function message(target: Snapshot, streamParent: Snapshot | null): Promise<string> {
  const at: DiskFullContext = { destDir: os.tmpdir(), mountPoint: '/', target, streamParent, spool: { dir: '/d/.snapferry-restore-u', wireBytes: 10 * MiB, complete: false } };
  const err = await asRestoreDiskFull(full, at);
  assert.ok(err instanceof SnapferryError && err.code === 'restore_disk_full', String(err));
  return err.message;
}

test('a full restore of a snapshot pushed as an incremental says it is a full stream whose size is not known, and what to free', async () => {
  const said = await message(inc, null);
  assert.match(said, /this is a full stream, the whole snapshot/);
  assert.match(said, /the server knows only the 60\.0 MiB of the incremental it was pushed as/);
  assert.match(said, /free at least what home\.X holds where it was taken/);
  assert.doesNotMatch(said, /incremental from another parent/);
  assert.doesNotMatch(said, /snapshot holds 60\.0 MiB|up to 60\.0 MiB/, 'the incremental\'s size is not the snapshot\'s');
  assert.match(said, /goes on from the 10\.0 MiB of it already verified/);
});

test('on the push\'s own plan the catalog\'s sizes are the restore\'s: the rest of the download and the snapshot', async () => {
  assert.match(await message(inc, base), /needs about 80\.0 MiB more \(the rest of the download, about 20\.0 MiB, and the received snapshot, up to 60\.0 MiB\)/);
  assert.match(await message(base, null), /needs about 590\.0 MiB more \(the rest of the download, about 190\.0 MiB, and the received snapshot, up to 400\.0 MiB\)/);
});

test('an incremental from another parent than the push\'s names it; the size is the whole snapshot\'s only when the push was full', async () => {
  const other = snapshot('home.0', 'u0', null, 390 * MiB);
  const fromOther = await message(inc, other);
  assert.match(fromOther, /an incremental from home\.0, another parent than the push's, and the server knows only the 60\.0 MiB of the incremental it was pushed as/);
  assert.doesNotMatch(fromOther, /snapshot holds/);
  const pushedFull = await message(base, other);
  assert.match(pushedFull, /an incremental from home\.0, another parent than the push's; the whole snapshot holds 400\.0 MiB \(it was pushed full\), so no more than that/);
});

test('a snapshot the server adopted without its push\'s record (sizes unknown, recorded as 0) is not said to need 0 B', async () => {
  const adopted = snapshot('home.A', 'uA', null, 0);
  const said = await message({ ...adopted, wireBytes: 0 }, null);
  assert.match(said, /needs more \(how much is not known beforehand: the server adopted home\.A from its disk without the record of its push/);
  assert.match(said, /free at least what home\.A holds where it was taken/);
  assert.doesNotMatch(said, /0 B/);
  assert.match(await message({ ...adopted, rawBytes: 5 * MiB, transferId: 't1' }, null), /needs about 5\.0 MiB more/, 'a known size is used');
});

test('what is not a full disk passes through unchanged', async () => {
  const other = new Error('connection reset');
  assert.equal(await asRestoreDiskFull(other, { destDir: '/', mountPoint: '/', target: inc, streamParent: null, spool: null }), other);
});
