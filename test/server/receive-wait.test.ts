/**
 * What a failed receive means and when it runs again (server/receive-wait.ts), the moves a transfer may make
 * (server/transfer-moves.ts), and the retries applied to a real catalog file with fake receives
 * (server/receive-retries.ts). No root, no btrfs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { BtrfsCommandError } from '../../core/btrfs/errors.ts';
import { DiskFullError } from '../../server/disk-full.ts';
import { classifyReceiveFailure, retryDelayMs, retryDue, tooSmallFor, waitAfter, waitingState, type RetrySchedule } from '../../server/receive-wait.ts';
import { canMove } from '../../server/transfer-moves.ts';
import { ReceiveRetries } from '../../server/receive-retries.ts';
import { Catalog, type TransferRecord } from '../../server/catalog.ts';
import { silentLogger } from '../../server/log.ts';
import { transferStates, type ReceiveWait, type TransferState } from '../../core/protocol.ts';

const SCHEDULE: RetrySchedule = { firstMs: 5000, maxMs: 300_000, checkMs: 10_000 };
const T0 = Date.parse('2026-12-04T10:00:00Z');
const MiB = 1024 * 1024;

function btrfsFailure(stderr: string): BtrfsCommandError {
  return new BtrfsCommandError({ command: ['btrfs', 'receive', '-e', '--', '/v'], exitCode: 1, signal: null, stderrTail: stderr });
}

test('a failed receive is the disk, the server, or the stream', () => {
  const enospc = Object.assign(new Error('ENOSPC: no space left on device, write'), { code: 'ENOSPC' });
  assert.equal(classifyReceiveFailure(btrfsFailure('ERROR: writing to a/b failed: No space left on device')), 'disk_full');
  assert.equal(classifyReceiveFailure(new SnapferryError('receive_failed', 'spool read failed', { cause: enospc })), 'disk_full');
  assert.equal(classifyReceiveFailure(new DiskFullError(null)), 'disk_full');
  const edquot = Object.assign(new Error('quota'), { code: 'EDQUOT' });
  assert.equal(classifyReceiveFailure(new SnapferryError('receive_failed', 'x', { cause: edquot })), 'disk_full');

  assert.equal(classifyReceiveFailure(btrfsFailure('ERROR: writing to a/b failed: Input/output error')), 'server_fault');
  const eio = Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' });
  assert.equal(classifyReceiveFailure(new SnapferryError('receive_failed', 'receiving s1 failed: EIO', { cause: eio })), 'server_fault');
  assert.equal(classifyReceiveFailure(new BtrfsCommandError({ command: ['btrfs', 'receive'], exitCode: null, signal: 'SIGKILL', stderrTail: '' })), 'server_fault');

  for (const code of ['sendstream_unsafe_path', 'frame_chain_mismatch', 'stream_metadata_mismatch', 'snapshot_exists', 'snapshot_uuid_taken', 'receive_unchecked']) {
    assert.equal(classifyReceiveFailure(new SnapferryError(code, 'refused')), 'refused', code);
  }
  // A parent an admin deleted after the upload began: no retry brings it back; a new plan picks another.
  assert.equal(classifyReceiveFailure(btrfsFailure('ERROR: cannot find parent subvolume')), 'refused');
  assert.equal(classifyReceiveFailure(btrfsFailure('ERROR: clone: did not find source subvol')), 'refused');

  assert.equal(waitingState('disk_full'), 'waiting_for_space');
  assert.equal(waitingState('server_fault'), 'waiting_to_retry');
});

test('tries again 5 s, 20 s, 80 s after a failure, then every 5 min at most', () => {
  assert.deepEqual([1, 2, 3, 4, 5, 50].map((n) => retryDelayMs(n, SCHEDULE)), [5000, 20_000, 80_000, 300_000, 300_000, 300_000]);
});

test('a wait counts its tries from the first failure and needs the raw stream in free space', () => {
  const first = waitAfter({ reason: 'disk_full', before: null, rawBytes: 100 * MiB, freeAtStart: null, freeBytes: 3 * MiB, nowMs: T0 }, SCHEDULE);
  assert.deepEqual(first, {
    reason: 'disk_full', since: '2026-12-04T10:00:00.000Z', tries: 1, nextTryAt: '2026-12-04T10:00:05.000Z', neededBytes: 100 * MiB, freeBytes: 3 * MiB,
  });
  // Tried again on its timer with little free, and failed again: the need stays, the next try is later.
  const second = waitAfter({ reason: 'disk_full', before: first, rawBytes: 100 * MiB, freeAtStart: 3 * MiB, freeBytes: 3 * MiB, nowMs: T0 + 10_000 }, SCHEDULE);
  assert.equal(second.since, first.since);
  assert.equal(second.tries, 2);
  assert.equal(second.nextTryAt, '2026-12-04T10:00:30.000Z');
  assert.equal(second.neededBytes, 100 * MiB);
  // Started with 120 MiB free and still ran out: it needs more than that, or freed space would start it again and again.
  const third = waitAfter({ reason: 'disk_full', before: second, rawBytes: 100 * MiB, freeAtStart: 120 * MiB, freeBytes: 1 * MiB, nowMs: T0 + 40_000 }, SCHEDULE);
  assert.equal(third.neededBytes, 150 * MiB);
  // Another fault than space needs no space.
  const fault = waitAfter({ reason: 'server_fault', before: third, rawBytes: 100 * MiB, freeAtStart: null, freeBytes: 1 * MiB, nowMs: T0 + 50_000 }, SCHEDULE);
  assert.deepEqual([fault.reason, fault.tries, fault.neededBytes, fault.since], ['server_fault', 4, null, first.since]);
});

test('a waiting receive runs once its space is there, or when its time comes', () => {
  const wait: ReceiveWait = { reason: 'disk_full', since: 'x', tries: 2, nextTryAt: new Date(T0 + 60_000).toISOString(), neededBytes: 100 * MiB, freeBytes: 0 };
  assert.equal(retryDue(wait, T0, 10 * MiB), null);
  assert.equal(retryDue(wait, T0, null), null, 'free space unknown: the timer decides');
  assert.match(retryDue(wait, T0, 100 * MiB) ?? '', /free/);
  assert.match(retryDue(wait, T0 + 60_000, 0) ?? '', /try 3/);
  const fault: ReceiveWait = { ...wait, reason: 'server_fault', neededBytes: null };
  assert.equal(retryDue(fault, T0, 1e12), null, 'space does not heal an I/O error');
  assert.notEqual(retryDue(fault, T0 + 60_000, 0), null);
});

test('a stream too big for the filesystem even empty: told apart from a full disk, and no timer tries it again', () => {
  const wait: ReceiveWait = { reason: 'disk_full', since: 'x', tries: 1, nextTryAt: new Date(T0 + 60_000).toISOString(), neededBytes: 100 * MiB, freeBytes: 0 };
  const disk = { totalBytes: 190 * MiB, compresses: false };
  assert.equal(tooSmallFor(wait, 95 * MiB, disk), true, 'spool and receive are more than the whole filesystem');
  assert.equal(tooSmallFor(wait, 90 * MiB, disk), false, 'as much as the filesystem: freeing space may still do');
  assert.equal(tooSmallFor(wait, 95 * MiB, { ...disk, compresses: true }), false, 'a compressing mount: the snapshot may take far less');
  assert.equal(tooSmallFor(wait, 95 * MiB, null), false, 'the filesystem unknown');
  assert.equal(tooSmallFor({ ...wait, reason: 'server_fault', neededBytes: null }, 95 * MiB, disk), false);
  const tooSmall: ReceiveWait = { ...wait, filesystemBytes: disk.totalBytes };
  assert.equal(retryDue(tooSmall, T0 + 60_000, 0), null, 'its time alone does not run it: it would only fill the disk again');
  assert.match(retryDue(tooSmall, T0, 100 * MiB) ?? '', /free/, 'a filesystem grown to hold it does');
});

test('the moves a transfer may make: a whole stream never fails for waiting, nothing leaves an end', () => {
  const ok: [TransferState, TransferState][] = [
    ['uploading', 'receiving'], ['receiving', 'waiting_for_space'], ['receiving', 'waiting_to_retry'], ['waiting_for_space', 'receiving'],
    ['waiting_to_retry', 'receiving'], ['waiting_for_space', 'aborted'], ['receiving', 'received'], ['receiving', 'uploading'],
    ['receiving', 'failed'], ['failed', 'received'], ['failed', 'failed'], ['verifying', 'aborted'],
  ];
  for (const [from, to] of ok) assert.ok(canMove(from, to), `${from} -> ${to}`);
  const refused: [TransferState, TransferState][] = [
    ['waiting_for_space', 'failed'], ['waiting_to_retry', 'failed'], ['uploading', 'waiting_for_space'], ['receiving', 'aborted'],
    ['received', 'receiving'], ['failed', 'receiving'], ['aborted', 'uploading'], ['waiting_for_space', 'uploading'],
  ];
  for (const [from, to] of refused) assert.ok(!canMove(from, to), `${from} -> ${to}`);
  for (const s of transferStates) assert.ok(canMove(s, s) && canMove(s, 'received'), s);
});

async function catalogIn(t: { after(fn: () => Promise<void>): void }): Promise<{ catalog: Catalog; file: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-receive-wait-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'catalog.json');
  return { catalog: await Catalog.open(file), file };
}

function record(id: string, state: TransferState): TransferRecord {
  const at = new Date(T0).toISOString();
  return {
    id, client: 'laptop', volume: 'home', snapshot: 's1', uuid: 'u', parentUuid: null, state, createdAt: at, updatedAt: at,
    chunkSize: MiB, rawEstimate: null, error: null, lastInterruption: null, interruptions: 0, sendStream: 'v1',
    wireBytes: 60 * MiB, rawBytes: 100 * MiB, framesVerified: 100, wait: null,
  };
}

function retriesOver(catalog: Catalog, free: { bytes: number | null }) {
  const started: string[] = [];
  const later: [string, number][] = [];
  const retries = new ReceiveRetries(
    { catalog, log: silentLogger(), freeBytes: () => Promise.resolve(free.bytes), filesystem: async () => null, spoolBytes: async () => 0, root: '/srv/snapferry', startFromSpool: (id) => started.push(id), startLater: (id, ms) => later.push([id, ms]) },
    SCHEDULE,
  );
  return { retries, started, later };
}

test('a whole stream whose receive ran out of space waits, keeps its record, and is received again once space is there', async (t) => {
  const { catalog, file } = await catalogIn(t);
  await catalog.putTransfer(record('a', 'receiving'));
  const free = { bytes: 2 * MiB as number | null };
  const { retries, started } = retriesOver(catalog, free);

  await retries.failed(catalog.transfer('a')!, 'disk_full', btrfsFailure('ERROR: No space left on device'));
  const waiting = catalog.transfer('a')!;
  assert.equal(waiting.state, 'waiting_for_space');
  assert.deepEqual([waiting.wait?.tries, waiting.wait?.neededBytes, waiting.wait?.freeBytes], [1, 100 * MiB, 2 * MiB]);
  assert.equal(waiting.error?.code, 'btrfs_failed');
  assert.equal(JSON.parse(await fs.readFile(file, 'utf8')).transfers[0].state, 'waiting_for_space', 'on disk too');

  await retries.check();
  assert.deepEqual(started, [], 'not enough space, and not its time yet');
  free.bytes = 200 * MiB;
  await retries.check();
  assert.deepEqual(started, ['a']);
  assert.equal(catalog.transfer('a')!.state, 'receiving');
  assert.equal(catalog.transfer('a')!.wait?.tries, 1, 'the wait stays while it runs again');

  // It ran out again with 200 MiB free when it started: freed space alone no longer starts it below 250 MiB.
  await retries.failed(catalog.transfer('a')!, 'disk_full', btrfsFailure('ERROR: No space left on device'));
  assert.deepEqual([catalog.transfer('a')!.wait?.tries, catalog.transfer('a')!.wait?.neededBytes], [2, 250 * MiB]);
  await retries.check();
  assert.deepEqual(started, ['a']);
});

test('an I/O error waits on its timer; a receive beside an upload starts again later; a full disk that refuses the catalog does not stop it', async (t) => {
  const { catalog } = await catalogIn(t);
  await catalog.putTransfer(record('b', 'receiving'));
  await catalog.putTransfer(record('c', 'uploading'));
  const { retries, started, later } = retriesOver(catalog, { bytes: 1e12 });

  await retries.failed(catalog.transfer('b')!, 'server_fault', btrfsFailure('ERROR: Input/output error'));
  assert.equal(catalog.transfer('b')!.state, 'waiting_to_retry');
  await retries.check();
  assert.deepEqual(started, [], 'plenty of space does not heal an I/O error: its timer does');

  // The upload goes on: its receive starts again after 5 s, then 20 s (or with the next frame), and it stays uploading.
  await retries.failed(catalog.transfer('c')!, 'disk_full', btrfsFailure('No space left on device'));
  await retries.failed(catalog.transfer('c')!, 'disk_full', btrfsFailure('No space left on device'));
  assert.deepEqual(later, [['c', 5000], ['c', 20_000]]);
  assert.equal(catalog.transfer('c')!.state, 'uploading');

  // The catalog cannot be saved (its folder is gone, as a full disk refuses a write): the change is not made, in
  // memory either, and the stream is received again later by a timer here, not left `receiving` with nothing running.
  const brokenDir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-receive-wait-broken-'));
  const broken = await Catalog.open(path.join(brokenDir, 'catalog.json'));
  await broken.putTransfer(record('d', 'receiving'));
  await fs.rm(brokenDir, { recursive: true });
  await fs.writeFile(brokenDir, 'a file where the folder was');
  t.after(() => fs.rm(brokenDir, { force: true }));
  const onBroken = retriesOver(broken, { bytes: 0 });
  await onBroken.retries.failed(broken.transfer('d')!, 'disk_full', btrfsFailure('No space left on device'));
  await onBroken.retries.failed(broken.transfer('d')!, 'disk_full', btrfsFailure('No space left on device'));
  assert.equal(broken.transfer('d')!.state, 'receiving');
  assert.deepEqual(onBroken.later, [['d', 5000], ['d', 20_000]]);
});

test('the catalog refuses a move the table does not allow', async (t) => {
  const { catalog } = await catalogIn(t);
  await catalog.putTransfer(record('e', 'waiting_for_space'));
  await assert.rejects(catalog.updateTransfer('e', { state: 'failed' }), (err: SnapferryError) => err.code === 'transfer_state_conflict');
  assert.equal(catalog.transfer('e')!.state, 'waiting_for_space');
});
