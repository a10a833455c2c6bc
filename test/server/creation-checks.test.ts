/**
 * Whether a new upload may begin (server/transfers/creation.ts): every refusal of a tus creation request, from its
 * metadata and from what the catalog holds, without root, btrfs or a server. Each refusal carries the code and the
 * HTTP status (server/http-errors.ts) the e2e tests see over real sockets.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName } from '../../core/names.ts';
import { META, WIRE_FORMAT } from '../../core/protocol.ts';
import { MIN_CHUNK_SIZE } from '../../core/wire/frame.ts';
import type { SnapshotRecord, TransferRecord } from '../../server/catalog.ts';
import { statusOf } from '../../server/http-errors.ts';
import {
  MIN_FREE_BYTES, admitTransfer, checkFreeSpace, checkOpenUploads, parseCreation, type ClientHoldings, type Creation, type CreationMetadata, type Receivable,
} from '../../server/transfers/creation.ts';

const CLIENT = 'alice' as SafeName;
const UUID = '11111111-1111-4111-8111-111111111111';
const PARENT = '22222222-2222-4222-8222-222222222222';
const OTHER = '33333333-3333-4333-8333-333333333333';
const NOW = '2026-12-05T04:00:00.000Z';
const V1_ONLY: Receivable = { receiveStreamVersions: [1], progs: { major: 5, minor: 16, text: 'v5.16' } };
const V1_V2: Receivable = { receiveStreamVersions: [1, 2], progs: { major: 6, minor: 2, text: 'v6.2' } };

const metadata = (over: CreationMetadata = {}): CreationMetadata => ({
  [META.volume]: 'home', [META.snapshot]: 'home.1', [META.uuid]: UUID, [META.format]: WIRE_FORMAT,
  [META.chunkSize]: String(MIN_CHUNK_SIZE), [META.rawEstimate]: '1000', ...over,
});

const snapshot = (over: Partial<SnapshotRecord> = {}): SnapshotRecord => ({
  client: CLIENT, volume: 'home', name: 'home.0', uuid: PARENT, serverUuid: OTHER, parentUuid: null, receivedAt: NOW,
  rawBytes: 1, wireBytes: 1, transferId: null, createdAt: null, takenAt: null, altered: null, ...over,
});

const transfer = (over: Partial<TransferRecord> = {}): TransferRecord => ({
  id: 'a'.repeat(32), client: CLIENT, volume: 'home', snapshot: 'home.0', uuid: OTHER, parentUuid: null, chunkSize: MIN_CHUNK_SIZE,
  sendStream: 'v1', snapshotCreatedAt: null, snapshotTakenAt: null, state: 'uploading', createdAt: NOW, updatedAt: NOW, rawEstimate: null,
  error: null, lastInterruption: null, interruptions: 0, wireBytes: null, rawBytes: null, framesVerified: null, wait: null, ...over,
});

const parsed = (over: CreationMetadata = {}): Creation => parseCreation(metadata(over), V1_V2);
const admit = (c: Creation, held: Partial<ClientHoldings> = {}) => admitTransfer(CLIENT, 'b'.repeat(32), c, { snapshots: [], transfers: [], receiving: () => false, ...held }, NOW);

/** Asserts that `run` throws a SnapferryError with `code`, answered with `status`, and returns it. */
function refuses(run: () => unknown, code: string, status: number): SnapferryError {
  try {
    run();
  } catch (err) {
    assert.ok(err instanceof SnapferryError, `a typed error, not ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assert.equal(statusOf(err), status);
    return err;
  }
  assert.fail(`expected ${code}, but it was allowed`);
}

test('a well-formed creation becomes an uploading transfer with the metadata it named', () => {
  const c = parsed({ [META.parentUuid]: PARENT, [META.takenAt]: '2026-12-01T00:00:00.000Z', [META.sendStream]: 'v2-compressed' });
  const record = admit(c, { snapshots: [snapshot()] });
  assert.deepEqual(
    { ...record },
    {
      id: 'b'.repeat(32), client: CLIENT, volume: 'home', snapshot: 'home.1', uuid: UUID, parentUuid: PARENT, chunkSize: MIN_CHUNK_SIZE,
      sendStream: 'v2-compressed', snapshotCreatedAt: null, snapshotTakenAt: '2026-12-01T00:00:00.000Z', state: 'uploading', createdAt: NOW, updatedAt: NOW,
      rawEstimate: 1000, error: null, lastInterruption: null, interruptions: 0, wireBytes: null, rawBytes: null, framesVerified: null, wait: null,
    },
  );
});

test('a raw estimate that makes no sense is recorded as none; absent send stream is v1', () => {
  for (const raw of ['-5', 'lots', 'Infinity']) assert.equal(parsed({ [META.rawEstimate]: raw }).rawEstimate, null, raw);
  assert.equal(parsed({ [META.sendStream]: undefined }).sendStream, 'v1');
});

test('parentReceived: only "1" beside a parent UUID marks the parent a received copy on the client, recorded with the transfer', () => {
  const c = parsed({ [META.parentUuid]: PARENT, [META.parentReceived]: '1' });
  assert.equal(c.parentReceived, true);
  assert.equal(admit(c, { snapshots: [snapshot()] }).parentReceived, true);
  assert.equal(parsed({ [META.parentUuid]: PARENT, [META.parentReceived]: 'yes' }).parentReceived, false);
  assert.equal(parsed({ [META.parentReceived]: '1' }).parentReceived, false, 'a full send has no parent to judge');
  assert.equal('parentReceived' in admit(parsed({ [META.parentUuid]: PARENT }), { snapshots: [snapshot()] }), false, 'absent unless set');
});

test('ctransid and parentCtransid: the transaction ids the client declares, null when absent (an older client), the parent\'s only beside a parent UUID; one that is not a count is the caller\'s mistake', () => {
  const c = parsed({ [META.parentUuid]: PARENT, [META.ctransid]: '41', [META.parentCtransid]: '7' });
  assert.deepEqual([c.ctransid, c.parentCtransid], [41, 7]);
  assert.deepEqual([parsed().ctransid, parsed({ [META.parentUuid]: PARENT }).parentCtransid], [null, null]);
  assert.equal(parsed({ [META.parentCtransid]: '7' }).parentCtransid, null, 'a full send has no parent to judge');
  assert.equal(parsed({ [META.ctransid]: '9007199254740991' }).ctransid, Number.MAX_SAFE_INTEGER);
  for (const raw of ['', '-1', '1.5', '0x10', ' 7', '9007199254740992', 'seven']) {
    refuses(() => parsed({ [META.parentUuid]: PARENT, [META.parentCtransid]: raw }), 'invalid_input', 400);
    refuses(() => parsed({ [META.ctransid]: raw }), 'invalid_input', 400);
  }
});

test('metadata names that are not safe names or UUIDs are refused as the caller\'s mistake (400)', () => {
  refuses(() => parsed({ [META.volume]: '../etc' }), 'invalid_input', 400);
  refuses(() => parsed({ [META.volume]: undefined }), 'invalid_input', 400);
  refuses(() => parsed({ [META.snapshot]: 'a/b' }), 'invalid_input', 400);
  refuses(() => parsed({ [META.uuid]: 'not-a-uuid' }), 'invalid_input', 400);
  refuses(() => parsed({ [META.parentUuid]: 'nope' }), 'invalid_input', 400);
});

test('another wire format is refused with what to do', () => {
  const e = refuses(() => parsed({ [META.format]: 'sfr0' }), 'unsupported_format', 400);
  assert.match(e.message, /upgrade the client or the server/);
});

test('a chunk size out of range or not a number is the caller\'s mistake, never a RangeError answered 500', () => {
  for (const raw of ['12', String(1024 ** 3), 'big', undefined]) refuses(() => parsed({ [META.chunkSize]: raw }), 'invalid_input', 400);
});

test('a send stream name not known is refused; one this btrfs receive cannot read says how to push instead', () => {
  refuses(() => parsed({ [META.sendStream]: 'v9' }), 'invalid_input', 400);
  const e = refuses(() => parseCreation(metadata({ [META.sendStream]: 'v2-compressed' }), V1_ONLY), 'unsupported_format', 400);
  assert.match(e.message, /btrfs-progs v5\.16.*--send-compressed off/);
  assert.deepEqual(e.details, { sendStream: 'v2-compressed', receiveStreamVersions: [1] });
  assert.equal(parseCreation(metadata({ [META.sendStream]: 'v1' }), V1_ONLY).sendStream, 'v1');
});

test('times that are not ISO 8601 UTC are refused; absent ones are null', () => {
  refuses(() => parsed({ [META.createdAt]: '2026-13-01T00:00:00Z' }), 'invalid_input', 400);
  refuses(() => parsed({ [META.takenAt]: 'yesterday' }), 'invalid_input', 400);
  assert.equal(parsed({ [META.createdAt]: '' }).createdAt, null);
});

test('free space below the margin and two chunks refuses the upload (507), at the byte', () => {
  const need = MIN_FREE_BYTES + 2 * MIN_CHUNK_SIZE;
  const e = refuses(() => checkFreeSpace(need - 1, MIN_CHUNK_SIZE), 'disk_full', 507);
  assert.equal(e.details.freeBytes, need - 1);
  assert.doesNotThrow(() => checkFreeSpace(need, MIN_CHUNK_SIZE));
});

test('open uploads: uploading transfers and spools held count once each, up to the limit (429), naming those kept by failed ones', () => {
  const up = (id: string) => transfer({ id, state: 'uploading' });
  const failed = (id: string) => transfer({ id, state: 'failed' });
  // Two uploading (one of them with its spool counted once), one failed keeping its spool: three open.
  const transfers = [up('u1'), up('u2'), failed('f1'), transfer({ id: 'r1', state: 'received' })];
  assert.doesNotThrow(() => checkOpenUploads(CLIENT, transfers, ['u1', 'f1'], 4));
  const e = refuses(() => checkOpenUploads(CLIENT, transfers, ['u1', 'f1'], 3), 'too_many_uploads', 429);
  assert.equal(e.retryable, true);
  assert.deepEqual(e.details, { client: CLIENT, open: 3, keptByFailed: 1, maxOpenUploads: 3 });
  assert.match(e.message, /1 of them spools kept by failed transfers/);
});

test('snapshot_present: the volume already holds this UUID', () => {
  refuses(() => admit(parsed(), { snapshots: [snapshot({ uuid: UUID, name: 'home.1' })] }), 'snapshot_present', 409);
});

test('snapshot_name_taken: another snapshot of the volume has the name', () => {
  const e = refuses(() => admit(parsed(), { snapshots: [snapshot({ name: 'home.1' })] }), 'snapshot_name_taken', 409);
  assert.match(e.message, /rename one of them/);
});

test('snapshot_uuid_taken: the client holds the UUID in another volume; the same UUID of the same name elsewhere is no clash of names', () => {
  const e = refuses(() => admit(parsed(), { snapshots: [snapshot({ volume: 'etc', name: 'home.1', uuid: UUID })] }), 'snapshot_uuid_taken', 409);
  assert.deepEqual(e.details, { uuid: UUID, heldIn: 'etc', heldAs: 'home.1' });
  assert.match(e.message, /in volume etc as home\.1/, 'names the volume that holds it, not the one asked for');
});

test('parent_missing: the parent is not in this volume (another volume\'s snapshot of that UUID does not count)', () => {
  const c = parsed({ [META.parentUuid]: PARENT });
  refuses(() => admit(c), 'parent_missing', 409);
  refuses(() => admit(c, { snapshots: [snapshot({ volume: 'etc' })] }), 'parent_missing', 409);
});

test('parent_altered: the parent was changed by hand on the server', () => {
  const altered = { foundAt: NOW, what: ['not_read_only' as const] };
  const e = refuses(() => admit(parsed({ [META.parentUuid]: PARENT }), { snapshots: [snapshot({ altered })] }), 'parent_altered', 409);
  assert.match(e.message, /is no longer read-only/);
  // Changed by hand but not named as the parent: a full send beside it is fine.
  assert.equal(admit(parsed(), { snapshots: [snapshot({ altered })] }).state, 'uploading');
});

test('volume_busy: a transfer of the volume is in progress, waiting ones included; ended ones and other volumes do not count', () => {
  for (const state of ['uploading', 'receiving', 'waiting_for_space', 'waiting_to_retry'] as const) {
    const e = refuses(() => admit(parsed(), { transfers: [transfer({ state })] }), 'volume_busy', 409);
    assert.equal(e.retryable, true);
    assert.equal(e.details.state, state);
  }
  for (const state of ['received', 'failed', 'aborted'] as const) assert.doesNotThrow(() => admit(parsed(), { transfers: [transfer({ state })] }));
  assert.doesNotThrow(() => admit(parsed(), { transfers: [transfer({ volume: 'etc' })] }));
});

test('volume_busy: an ended transfer whose receive is still being stopped holds its volume until it has stopped', () => {
  for (const state of ['failed', 'aborted'] as const) {
    const ended = transfer({ state });
    const e = refuses(() => admit(parsed(), { transfers: [ended], receiving: (id) => id === ended.id }), 'volume_busy', 409);
    assert.equal(e.retryable, true);
    assert.match(e.message, /its receive is being stopped; try again shortly/);
    assert.doesNotThrow(() => admit(parsed(), { transfers: [ended], receiving: () => false }));
  }
});

test('the refusals come in a fixed order: present before name before UUID before parent before busy', () => {
  const c = parsed({ [META.parentUuid]: PARENT });
  const all = { snapshots: [snapshot({ uuid: UUID, name: 'home.1' })], transfers: [transfer()] };
  refuses(() => admit(c, all), 'snapshot_present', 409);
  refuses(() => admit(c, { ...all, snapshots: [snapshot({ uuid: OTHER, name: 'home.1' }), snapshot({ volume: 'etc', uuid: UUID })] }), 'snapshot_name_taken', 409);
  refuses(() => admit(c, { ...all, snapshots: [snapshot({ volume: 'etc', uuid: UUID })] }), 'snapshot_uuid_taken', 409);
  refuses(() => admit(c, { ...all, snapshots: [] }), 'parent_missing', 409);
  refuses(() => admit(c, { ...all, snapshots: [snapshot()] }), 'volume_busy', 409);
});
