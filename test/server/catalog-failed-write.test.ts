/**
 * A catalog write that fails (a full disk) takes its change back: memory never holds a state the file did not take
 * (server/catalog.ts). And an end frame whose record failed so is recorded once it can be, then waits for space as
 * any whole stream whose receive found the disk full (server/receive-retries.ts endNotRecorded). No root, no btrfs:
 * a real file, written through a writer that refuses while told to.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { writeFileDurably } from '../../core/durable-file.ts';
import { Catalog, type TransferRecord } from '../../server/catalog.ts';
import { ReceiveRetries } from '../../server/receive-retries.ts';
import { silentLogger } from '../../server/log.ts';
import type { TransferState } from '../../core/protocol.ts';

const MiB = 1024 * 1024;
const enospc = () => Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });

async function fullable(t: { after(fn: () => Promise<void>): void }) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-catalog-full-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'catalog.json');
  const disk: { full: boolean; writes: number; refusing?: () => Promise<void> } = { full: false, writes: 0 };
  const catalog = await Catalog.open(file, async (f, text) => {
    disk.writes++;
    if (disk.full) {
      await disk.refusing?.();
      throw enospc();
    }
    await writeFileDurably(f, text);
  });
  const onFile = async (id: string) => (JSON.parse(await fs.readFile(file, 'utf8')) as { transfers: TransferRecord[] }).transfers.find((x) => x.id === id);
  return { catalog, disk, onFile };
}

function record(id: string, state: TransferState): TransferRecord {
  const at = new Date().toISOString();
  return {
    id, client: 'laptop', volume: 'home', snapshot: 's1', uuid: 'u', parentUuid: null, state, createdAt: at, updatedAt: at,
    chunkSize: MiB, rawEstimate: null, error: null, lastInterruption: null, interruptions: 0, sendStream: 'v1',
    wireBytes: null, rawBytes: null, framesVerified: null, wait: null,
  };
}

test('a change whose write fails is taken back; shown at once while it is written', async (t) => {
  const { catalog, disk, onFile } = await fullable(t);
  await catalog.putTransfer(record('a', 'uploading'));
  disk.full = true;
  const moving = catalog.updateTransfer('a', { state: 'receiving', rawBytes: 100 });
  assert.equal(catalog.transfer('a')!.state, 'receiving', 'shown before it is written (the checks in one turn rely on it)');
  await assert.rejects(moving, (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  assert.equal(catalog.transfer('a')!.state, 'uploading', 'taken back: as the file has it');
  assert.equal(catalog.transfer('a')!.rawBytes, null);
  assert.equal((await onFile('a'))!.state, 'uploading');

  // A new record whose write fails is gone again; the next write that succeeds writes only what was kept.
  await assert.rejects(catalog.putTransfer(record('b', 'uploading')));
  assert.equal(catalog.transfer('b'), undefined);
  disk.full = false;
  await catalog.updateTransfer('a', { state: 'receiving' });
  assert.equal((await onFile('a'))!.state, 'receiving');
  assert.equal(await onFile('b'), undefined);
});

test('a change queued behind one that fails is judged again on what the file holds', async (t) => {
  const { catalog, disk, onFile } = await fullable(t);
  await catalog.putTransfer(record('a', 'uploading'));
  await catalog.putTransfer(record('c', 'uploading'));
  // Full for the first write only: the move to receiving fails, the move built on it (to waiting) cannot apply to
  // `uploading`, and a change of another transfer queued behind both is written.
  const writes = disk.writes;
  disk.full = true;
  const first = catalog.updateTransfer('a', { state: 'receiving' });
  const second = catalog.updateTransfer('a', { state: 'waiting_for_space' });
  const other = catalog.updateTransfer('c', { interruptions: 1 });
  assert.equal(catalog.transfer('a')!.state, 'waiting_for_space');
  await assert.rejects(first);
  disk.full = false;
  await assert.rejects(second, (err: SnapferryError) => err.code === 'transfer_state_conflict');
  await other;
  assert.ok(disk.writes > writes);
  assert.equal(catalog.transfer('a')!.state, 'uploading');
  assert.equal((await onFile('a'))!.state, 'uploading');
  assert.equal(catalog.transfer('c')!.interruptions, 1);
  assert.equal((await onFile('c'))!.interruptions, 1);
});

test('an end frame whose record failed is recorded at the next look, then waits for space with its wait', async (t) => {
  const { catalog, disk, onFile } = await fullable(t);
  await catalog.putTransfer(record('e', 'uploading'));
  const started: string[] = [];
  const later: [string, number][] = [];
  const free = { bytes: 0 };
  const retries = new ReceiveRetries(
    { catalog, log: silentLogger(), freeBytes: () => Promise.resolve(free.bytes), filesystem: async () => null, spoolBytes: async () => 0, root: '/srv/snapferry', startFromSpool: (id) => started.push(id), startLater: (id, ms) => later.push([id, ms]) },
    { firstMs: 5000, maxMs: 300_000, checkMs: 10_000 },
  );
  const change = { state: 'receiving' as const, wireBytes: 60 * MiB, rawBytes: 100 * MiB, framesVerified: 100 };
  const error = new SnapferryError('end_not_recorded', 'could not record the end of the upload: ENOSPC: no space left on device, write', { cause: enospc() });

  disk.full = true;
  await retries.endNotRecorded('e', change, 'disk_full', error);
  assert.equal(catalog.transfer('e')!.state, 'uploading', 'not recorded, so not made');
  await retries.check();
  assert.equal(catalog.transfer('e')!.state, 'uploading', 'still full: tried again, still not made');

  disk.full = false;
  await retries.check();
  const waiting = catalog.transfer('e')!;
  assert.equal(waiting.state, 'waiting_for_space');
  assert.deepEqual([waiting.wait?.reason, waiting.wait?.tries, waiting.wait?.neededBytes, waiting.rawBytes], ['disk_full', 1, 100 * MiB, 100 * MiB]);
  assert.equal((await onFile('e'))!.state, 'waiting_for_space');
  assert.deepEqual(started, [], 'nothing free yet');

  free.bytes = 200 * MiB;
  await retries.check();
  assert.deepEqual(started, ['e'], 'freed space starts its receive from the spool');
  assert.deepEqual(later, []);
});

test('an end not recorded is forgotten when its transfer ended meanwhile', async (t) => {
  const { catalog, disk } = await fullable(t);
  await catalog.putTransfer(record('f', 'uploading'));
  const retries = new ReceiveRetries(
    { catalog, log: silentLogger(), freeBytes: () => Promise.resolve(0), filesystem: async () => null, spoolBytes: async () => 0, root: '/srv/snapferry', startFromSpool: () => undefined, startLater: () => undefined },
    { firstMs: 5000, maxMs: 300_000, checkMs: 10_000 },
  );
  disk.full = true;
  await retries.endNotRecorded('f', { state: 'receiving' }, 'disk_full', new SnapferryError('end_not_recorded', 'full'));
  disk.full = false;
  await catalog.updateTransfer('f', { state: 'aborted' });
  await retries.check();
  assert.equal(catalog.transfer('f')!.state, 'aborted');
});

test('a look while the end record is being tried again waits for that try: a refused try keeps the end remembered, and shown', async (t) => {
  const { catalog, disk } = await fullable(t);
  await catalog.putTransfer(record('g', 'uploading'));
  // Once the move is recorded, the wait is made after a look at the free space: held here while the test looks.
  let freeAsked: (() => void) | null = null;
  let answerFree: () => void = () => undefined;
  const freeBytes = () => new Promise<number>((resolve) => {
    answerFree = () => resolve(0);
    if (freeAsked) freeAsked();
    else resolve(0);
  });
  const retries = new ReceiveRetries(
    { catalog, log: silentLogger(), freeBytes, filesystem: async () => null, spoolBytes: async () => 0, root: '/srv/snapferry', startFromSpool: () => undefined, startLater: () => undefined },
    { firstMs: 5000, maxMs: 300_000, checkMs: 10_000 },
  );
  const change = { state: 'receiving' as const, wireBytes: 60 * MiB, rawBytes: 100 * MiB, framesVerified: 100 };
  // The first try's refusal takes a while (a full btrfs flushes before it says ENOSPC), and the periodic look comes
  // meanwhile: the move being written is shown (Catalog.updateTransfer), and read as the transfer having moved on, the
  // look dropped the end; the refusal then took the move back and the transfer said `uploading` for ever, no wait shown.
  let entered!: () => void;
  let release!: () => void;
  const inWrite = new Promise<void>((resolve) => (entered = resolve));
  disk.refusing = () => {
    disk.refusing = undefined;
    entered();
    return new Promise<void>((resolve) => (release = resolve));
  };
  disk.full = true;
  const ending = retries.endNotRecorded('g', change, 'disk_full', new SnapferryError('end_not_recorded', 'full'));
  await inWrite;
  assert.equal(catalog.transfer('g')!.state, 'receiving', 'the try is shown while it is written');
  // A reader (the API's view of a transfer) takes the record now, and asks what to show after its other reads.
  const taken = catalog.transfer('g')!;
  assert.equal(retries.unrecordedEnd(taken, 0)?.state, 'waiting_for_space', 'and the API shows the wait meanwhile');
  const looking = retries.check();
  release();
  await Promise.all([ending, looking]);
  assert.equal(catalog.transfer('g')!.state, 'uploading', 'refused: taken back');
  assert.equal(retries.unrecordedEnd(catalog.transfer('g')!, 0)?.state, 'waiting_for_space', 'the end is still remembered, and shown as the wait it is in');
  assert.equal(retries.unrecordedEnd(taken, 0)?.state, 'waiting_for_space', 'so is the record taken while the try was written');

  disk.full = false;
  const asked = new Promise<void>((resolve) => (freeAsked = resolve));
  const recording = retries.check();
  await asked;
  assert.equal(catalog.transfer('g')!.state, 'receiving', 'the move is on record, its wait not yet');
  assert.equal(retries.unrecordedEnd(catalog.transfer('g')!, 0)?.state, 'waiting_for_space', 'shown as the wait it is about to be on record');
  freeAsked = null;
  answerFree();
  await recording;
  assert.equal(catalog.transfer('g')!.state, 'waiting_for_space', 'recorded at the next look once the disk takes it');
  assert.equal(retries.unrecordedEnd(catalog.transfer('g')!, 0), null, 'then shown as the catalog has it');
});

test('markAltered finds its snapshot by what names it, not by the object a caller holds: read before a write was taken back, or before another finding', async (t) => {
  const { catalog, disk } = await fullable(t);
  await catalog.addSnapshot({
    client: 'laptop', volume: 'home', name: 's1', uuid: 'client-uuid', serverUuid: 'server-uuid', parentUuid: null,
    receivedAt: '2026-01-01T00:00:00.000Z', rawBytes: 1, wireBytes: 1, transferId: null, altered: null,
  });
  const before = catalog.snapshots('laptop', 'home')[0]!;
  // A finding whose write fails: shown at once (a reader takes that record), then taken back.
  disk.full = true;
  const failing = catalog.markAltered(before, ['not_read_only']);
  const shownWhileWritten = catalog.snapshots('laptop', 'home')[0]!;
  assert.deepEqual(shownWhileWritten.altered?.what, ['not_read_only']);
  await assert.rejects(failing, (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');
  assert.equal(catalog.snapshots('laptop', 'home')[0]!.altered, null, 'taken back');
  disk.full = false;
  // The reader's record is no longer the view's object; the snapshot is still there, and its finding is recorded.
  const flagged = await catalog.markAltered(shownWhileWritten, ['received_uuid_lost']);
  assert.deepEqual(flagged.altered?.what, ['received_uuid_lost'], 'only what was found and written: the failed finding is not made up');
  // A record from before that finding: the flag gathers both, and keeps the time of the first.
  const both = await catalog.markAltered(before, ['not_read_only']);
  assert.deepEqual(both.altered, { foundAt: flagged.altered!.foundAt, what: ['not_read_only', 'received_uuid_lost'] });
  assert.deepEqual(catalog.snapshots('laptop', 'home')[0], both);
  // Another subvolume received under the name since is not the one the finding was about.
  await assert.rejects(catalog.markAltered({ ...before, uuid: 'another' }, ['not_read_only']), (err: SnapferryError) => err.code === 'snapshot_not_found');
});
