/**
 * What the API shows and to whom (server/views.ts), over an in-memory catalog and a fake spool: no root, no btrfs.
 * The e2e tests (status, metrics, auth) see the same over real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { SafeName } from '../../core/names.ts';
import type { Caller } from '../../server/auth.ts';
import type { SnapshotRecord, TransferRecord } from '../../server/catalog.ts';
import type { OrphanedSpool } from '../../server/orphan-spools.ts';
import { statusOf } from '../../server/http-errors.ts';
import { VERSION } from '../../core/version.ts';
import { Views, ownerOf, statusFor, transfersFor, type CatalogReader, type ViewSource } from '../../server/views.ts';

const NOW = '2026-12-05T04:00:00.000Z';
const alice = 'alice' as SafeName;
const bob = 'bob' as SafeName;

const transfer = (id: string, client: string, over: Partial<TransferRecord> = {}): TransferRecord => ({
  id, client, volume: 'home', snapshot: `s-${id}`, uuid: id, parentUuid: null, chunkSize: 65536, sendStream: 'v1', snapshotCreatedAt: null,
  snapshotTakenAt: null, state: 'received', createdAt: NOW, updatedAt: NOW, rawEstimate: null, error: null, lastInterruption: null,
  interruptions: 0, wireBytes: 120, rawBytes: 100, framesVerified: 2, wait: null, ...over,
});
const snapshot = (name: string, client: string, volume = 'home'): SnapshotRecord => ({
  client, volume, name, uuid: name, serverUuid: name, parentUuid: null, receivedAt: NOW, rawBytes: 10, wireBytes: 12, transferId: null,
  createdAt: null, takenAt: null, altered: null, receivedUuid: `disk-${name}`,
});

function views(transfers: TransferRecord[], snapshots: SnapshotRecord[], orphans: OrphanedSpool[] = [], held: (id: string) => number = () => 790) {
  const catalog: CatalogReader = {
    transfer: (id) => transfers.find((t) => t.id === id),
    transfers: (f = {}) => transfers.filter((t) => (f.client === undefined || t.client === f.client) && (f.volume === undefined || t.volume === f.volume)),
    snapshots: (client, volume) => snapshots.filter((s) => s.client === client && (volume === undefined || s.volume === volume)),
    allSnapshots: () => [...snapshots],
    removed: () => [],
  };
  const source: ViewSource = {
    catalog, startedAt: Date.now(),
    progress: async () => ({ wireOffset: 777, framesVerified: 7, rawBytes: 700, chain: Buffer.alloc(32, 1) }),
    frameRecords: async () => [],
    arrived: () => 800,
    held: async (id) => held(id),
    heldByPush: () => true,
    rawReceived: () => 50,
    freeBytes: async () => 1e9,
    unrecordedEnd: () => null,
    spoolBytes: async () => 4096,
    orphanedSpools: async (client) => orphans.filter((o) => client === undefined || o.client === client),
    refreshVolume: async () => undefined,
    receiveStreamVersions: async () => [1, 2],
  };
  const v = new Views(source);
  // The service's view methods, as the caller scoping reads them.
  const service = {
    transfers: (c: SafeName) => v.transfers(c), status: (c?: SafeName) => v.status(c), clients: () => v.clients(),
    transferOwner: (id: string) => catalog.transfer(id)?.client,
  };
  return { v, service };
}

const clientCaller = (client: SafeName): Caller => ({ role: 'client', client }) as Caller;
const admin = { role: 'admin' } as Caller;

test('an upload in progress shows its live progress; one that is over its recorded figures; where it lies on disk is never shown', async () => {
  const { v } = views([transfer('up', 'alice', { state: 'uploading' }), transfer('done', 'alice')], [snapshot('s1', 'alice')]);
  const up = await v.transfer(alice, 'up');
  assert.deepEqual([up.wireOffset, up.framesVerified, up.rawBytes, up.chain, up.rawReceived, up.wireArrived, up.wireHeld, up.spoolBytes], [777, 7, 700, '01'.repeat(32), 50, 800, 790, 4096]);
  const done = await v.transfer(alice, 'done');
  assert.deepEqual([done.wireOffset, done.framesVerified, done.rawBytes, done.chain, done.rawReceived, done.wireHeld], [120, 2, 100, '', 100, 120]);
  assert.deepEqual([up.heldByPush, done.heldByPush], [true, false], 'only an upload is held by a push');
  const listed = (await v.snapshots(alice, 'home' as SafeName)).snapshots[0]!;
  assert.ok(!('receivedUuid' in listed) && !('client' in listed), 'the Received UUID on disk and the owner stay the server\'s');
});

test('another client\'s transfer is a missing one (404), to its frames and to ownerOf for a client alike', async () => {
  const { v, service } = views([transfer('t1', 'bob')], []);
  for (const run of [() => v.transfer(alice, 't1'), () => v.frames(alice, 't1', 0, 10)]) {
    await assert.rejects(run, (e: Error & { code: string }) => e.code === 'not_found' && statusOf(e) === 404);
  }
  assert.equal(ownerOf(service, clientCaller(alice), 't1'), alice, 'a client always acts as itself');
  assert.equal(ownerOf(service, admin, 't1'), bob);
  assert.throws(() => ownerOf(service, admin, 'nope'), (e: Error & { code: string }) => e.code === 'not_found');
});

test('status: a client counts its own snapshots, transfers and orphaned spools; the admin the whole server; version from package.json', async () => {
  const orphans = [{ id: 'o1', client: 'alice', state: 'failed', bytes: 100, mtimeMs: 0, idleSinceMs: 0 }, { id: 'o2', client: 'bob', state: 'failed', bytes: 5, mtimeMs: 0, idleSinceMs: 0 }] as OrphanedSpool[];
  const { service } = views(
    [transfer('a1', 'alice'), transfer('a2', 'alice', { state: 'failed' }), transfer('b1', 'bob')],
    [snapshot('s1', 'alice'), snapshot('s2', 'alice', 'etc'), snapshot('s3', 'bob')],
    orphans,
  );
  const mine = await statusFor(service, clientCaller(alice));
  assert.deepEqual([mine.volumes, mine.snapshots, mine.transfers, mine.orphanedSpools], [2, 2, { received: 1, failed: 1 }, { count: 1, bytes: 100 }]);
  const all = await statusFor(service, admin);
  assert.deepEqual([all.volumes, all.snapshots, all.transfers, all.orphanedSpools], [3, 3, { received: 2, failed: 1 }, { count: 2, bytes: 105 }]);
  assert.equal(all.version, VERSION);
  assert.match(VERSION, /^\d+\.\d+\.\d+/);
  assert.deepEqual(all.receiveStreamVersions, [1, 2]);
});

test('a volume is listed for a snapshot or for a stream in progress, never for an upload created with nothing sent, nor for a transfer that ended', async () => {
  const { v } = views(
    [
      transfer('bare', 'alice', { volume: 'created', state: 'uploading' }),
      transfer('part', 'alice', { volume: 'first', state: 'uploading' }),
      transfer('whole', 'alice', { volume: 'waits', state: 'waiting_for_space' }),
      transfer('gone', 'alice', { volume: 'failed', state: 'failed' }),
      transfer('done', 'alice', { volume: 'home' }),
    ],
    [snapshot('s1', 'alice')],
    [],
    (id) => (id === 'part' ? 40_000 : 0),
  );
  assert.deepEqual((await v.volumes(alice)).map((x) => [x.name, x.snapshots]), [['first', 0], ['home', 1], ['waits', 0]]);
  assert.equal((await v.status(alice)).volumes, 3);
  assert.deepEqual((await v.clientFacts(alice)).volumes.map((x) => x.name), ['first', 'home', 'waits']);
});

test('lists: a client sees its own transfers only, and may not name another; the admin every client\'s, narrowed by ?client=', async () => {
  const { service } = views([transfer('a1', 'alice'), transfer('b1', 'bob')], [snapshot('s9', 'carol')]);
  assert.deepEqual((await transfersFor(service, clientCaller(alice), undefined)).map((t) => t.id), ['a1']);
  assert.deepEqual((await transfersFor(service, clientCaller(alice), 'alice')).map((t) => t.id), ['a1']);
  // Another client's name is refused, not answered with alice's own list as if it were bob's.
  await assert.rejects(async () => transfersFor(service, clientCaller(alice), 'bob'), (err: Error & { code?: string }) => err.code === 'forbidden' && /admin token/.test(err.message));
  assert.deepEqual((await transfersFor(service, admin, undefined)).map((t) => t.id), ['a1', 'b1']);
  assert.deepEqual((await transfersFor(service, admin, 'bob')).map((t) => t.id), ['b1']);
  assert.deepEqual(service.clients(), ['alice', 'bob', 'carol']);
});

test('a volume names its snapshots whose size the server does not know (adopted from the disk: no transfer, sizes 0)', async () => {
  const adopted: SnapshotRecord = { ...snapshot('s1', 'alice'), rawBytes: 0, wireBytes: 0 };
  const { v } = views([], [adopted, { ...snapshot('s2', 'alice'), transferId: 't2' }]);
  assert.deepEqual((await v.volumes(alice)).map((x) => [x.name, x.rawBytes, x.sizeUnknown]), [['home', 10, ['s1']]]);
});
