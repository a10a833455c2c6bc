/**
 * What an event does to a transfer (server/transfers/machine.ts), without root: the steps each decision returns, and
 * that every change of state among them is one server/transfer-moves.ts allows (the catalog would refuse any other).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../core/errors.ts';
import { transferStates, type TransferState } from '../../core/protocol.ts';
import { FrameError } from '../../core/wire/index.ts';
import type { SnapshotRecord, TransferRecord } from '../../server/catalog.ts';
import { DiskFullError } from '../../server/disk-full.ts';
import { statusOf } from '../../server/http-errors.ts';
import { canMove } from '../../server/transfer-moves.ts';
import * as machine from '../../server/transfers/machine.ts';
import type { Step } from '../../server/transfers/machine.ts';

const NOW = '2026-12-05T04:00:00.000Z';
const ID = 'a'.repeat(32);
const PARENT = '22222222-2222-4222-8222-222222222222';
const GOT = { path: '/root/volumes/alice/home/home.1', serverUuid: 'srv', receivedUuid: 'rcv', rawBytes: 100, wireBytes: 120, ctransid: 42 };

const transfer = (state: TransferState, over: Partial<TransferRecord> = {}): TransferRecord => ({
  id: ID, client: 'alice', volume: 'home', snapshot: 'home.1', uuid: '11111111-1111-4111-8111-111111111111', parentUuid: null, chunkSize: 65536,
  sendStream: 'v1', snapshotCreatedAt: '2026-12-01T00:00:00.000Z', snapshotTakenAt: null, state, createdAt: NOW, updatedAt: NOW, rawEstimate: null,
  error: null, lastInterruption: null, interruptions: 2, wireBytes: 120, rawBytes: 100, framesVerified: 3, wait: null, ...over,
});

const parent = (over: Partial<SnapshotRecord> = {}): SnapshotRecord => ({
  client: 'alice', volume: 'home', name: 'home.0', uuid: PARENT, serverUuid: 'p', parentUuid: null, receivedAt: NOW,
  rawBytes: 1, wireBytes: 1, transferId: null, createdAt: null, takenAt: null, altered: null, ...over,
});

const kinds = (steps: readonly Step[]) => steps.map((s) => s.kind);
const records = (steps: readonly Step[]) => steps.flatMap((s) => (s.kind === 'record' ? [s.change] : []));

/** Every state the steps move `from` through, one move at a time, must be allowed; returns where it ends. */
function assertMovesAllowed(from: TransferState, steps: readonly Step[]): TransferState {
  let state = from;
  for (const change of records(steps)) {
    if (change.state === undefined) continue;
    assert.ok(canMove(state, change.state), `${state} -> ${change.state}`);
    state = change.state;
  }
  return state;
}

const inProgressStates = ['uploading', 'verifying', 'receiving', 'waiting_for_space', 'waiting_to_retry'] as const;

test('the end frame verified: the transfer moves on to receiving with the spool\'s final figures; nothing else does', () => {
  const whole = { wireOffset: 5000, framesVerified: 4, rawBytes: 9000, chain: Buffer.alloc(32), complete: true };
  const uploading = transfer('uploading', { wireBytes: null, rawBytes: null, framesVerified: null });
  for (const state of ['uploading', 'verifying'] as const) {
    const change = machine.completedUpload({ ...uploading, state }, whole);
    assert.deepEqual(change, { state: 'receiving', wireBytes: 5000, rawBytes: 9000, framesVerified: 4 });
    assert.ok(canMove(state, 'receiving'));
  }
  assert.equal(machine.completedUpload(uploading, { ...whole, complete: false }), null, 'a spool without its end frame is an upload going on');
  for (const state of transferStates.filter((s) => s !== 'uploading' && s !== 'verifying')) {
    assert.equal(machine.completedUpload(transfer(state), whole), null, `${state}: past its upload (an end frame sent again changes nothing)`);
  }
  assert.equal(machine.completedUpload(undefined, whole), null);
});

test('received: the snapshot is recorded with the transfer\'s facts, then the transfer, then retries forgotten, spool dropped, the volume pruned', () => {
  const steps = machine.onReceived(transfer('receiving'), GOT, NOW);
  assert.deepEqual(kinds(steps), ['addSnapshot', 'record', 'forgetRetries', 'dropSpool', 'log', 'prune']);
  assert.deepEqual(steps[0], {
    kind: 'addSnapshot',
    snapshot: {
      client: 'alice', volume: 'home', name: 'home.1', uuid: transfer('receiving').uuid, receivedUuid: 'rcv', serverUuid: 'srv', ctransid: 42, parentUuid: null,
      receivedAt: NOW, rawBytes: 100, wireBytes: 120, transferId: ID, createdAt: '2026-12-01T00:00:00.000Z', takenAt: null, altered: null,
    },
  });
  assert.deepEqual(records(steps), [{ state: 'received', error: null, wait: null }]);
  assert.deepEqual(steps.at(-1), { kind: 'prune', client: 'alice', volume: 'home' });
  assert.equal(assertMovesAllowed('receiving', steps), 'received');
  assert.deepEqual(machine.onReceived(undefined, GOT, NOW), [], 'a transfer forgotten meanwhile: nothing to do');
});

test('received: the spools of the same snapshot\'s failed and aborted transfers go too (stopped first), no other', () => {
  const failed = transfer('failed', { id: 'f'.repeat(32), error: { code: 'sendstream_cannot_apply', message: 'x', at: NOW } });
  const aborted = transfer('aborted', { id: '9'.repeat(32) });
  const others = [
    transfer('failed', { id: 'b'.repeat(32), uuid: '22222222-2222-4222-8222-222222222222' }),
    transfer('failed', { id: 'c'.repeat(32), client: 'bob' }),
    transfer('failed', { id: 'd'.repeat(32), volume: 'work' }),
    transfer('uploading', { id: 'e'.repeat(32) }),
  ];
  const t = transfer('receiving');
  const steps = machine.onReceived(t, GOT, NOW, [t, failed, ...others, aborted]);
  assert.deepEqual(kinds(steps), ['addSnapshot', 'record', 'forgetRetries', 'dropSpool', 'log', 'stopReceive', 'dropSpool', 'stopReceive', 'dropSpool', 'prune']);
  const of = steps.flatMap((s) => (s.kind === 'dropSpool' || s.kind === 'stopReceive' ? [[s.kind, s.of ?? null]] : []));
  assert.deepEqual(of, [['dropSpool', null], ['stopReceive', failed.id], ['dropSpool', failed.id], ['stopReceive', aborted.id], ['dropSpool', aborted.id]]);
  assert.deepEqual(steps[6], { kind: 'dropSpool', of: failed.id, report: { state: 'failed', why: `deleted: its snapshot was received since, by transfer ${ID}` } });
  assert.equal(assertMovesAllowed('receiving', steps), 'received');
});

test('receive failed on spool damage: the spool is rewound to the damaged frame, the upload goes on, the receive starts again', () => {
  const damage = new SnapferryError('receive_failed', 'read failed', { cause: new FrameError('frame_corrupt', 'frame 7 does not verify', { frameIndex: 7, wireOffset: 0 }) });
  for (const state of ['receiving', 'uploading'] as const) {
    const steps = machine.onReceiveFailed(transfer(state), damage, NOW);
    assert.deepEqual(kinds(steps), ['rewindSpool', 'record', 'log', 'restartReceive']);
    assert.deepEqual(steps[0], { kind: 'rewindSpool', frames: 7 });
    assert.deepEqual(records(steps), [{
      state: 'uploading', wireBytes: null, rawBytes: null, framesVerified: null, interruptions: 3,
      lastInterruption: `${NOW}: the spool was damaged at frame 7; rewound there for the client to send again`,
    }]);
    assert.equal(assertMovesAllowed(state, steps), 'uploading');
  }
});

test('spool damage is found however deep the frame error is wrapped, up to five causes; no index means frame 0', () => {
  const wrap = (e: unknown, n: number): unknown => (n === 0 ? e : wrap(new SnapferryError('x', 'x', { cause: e }), n - 1));
  const frame = new FrameError('frame_corrupt', 'cut', { wireOffset: 0 } as never);
  assert.equal(machine.spoolDamage(wrap(frame, 4)), 0);
  assert.equal(machine.spoolDamage(wrap(frame, 5)), null);
  assert.equal(machine.spoolDamage(new Error('EIO')), null);
});

test('receive failed for the server\'s own reasons: it waits for a retry (the retries decide when), nothing recorded here', () => {
  const t = transfer('receiving');
  for (const [err, fault] of [[new DiskFullError(null, {}), 'disk_full'], [new SnapferryError('btrfs_failed', 'I/O error'), 'server_fault']] as const) {
    const steps = machine.onReceiveFailed(t, err, NOW);
    assert.deepEqual(steps, [{ kind: 'retryLater', transfer: t, fault, error: err }]);
  }
  const plain = machine.onReceiveFailed(t, new Error('boom'), NOW)[0];
  assert.ok(plain?.kind === 'retryLater' && plain.error.code === 'receive_failed' && plain.error.message === 'Error: boom');
});

test('receive failed because the stream is refused: the transfer fails with the reason and keeps its spool', () => {
  for (const state of ['receiving', 'uploading'] as const) {
    const err = new SnapferryError('sendstream_bad_command', 'not the snapshot named');
    const steps = machine.onReceiveFailed(transfer(state), err, NOW);
    assert.deepEqual(kinds(steps), ['forgetRetries', 'record', 'log']);
    assert.deepEqual(records(steps), [{ state: 'failed', error: { code: 'sendstream_bad_command', message: 'not the snapshot named', at: NOW } }]);
    assert.ok(!kinds(steps).includes('dropSpool'));
    assert.equal(assertMovesAllowed(state, steps), 'failed');
  }
});

test('a receive failure of a transfer that is over, or gone, changes nothing', () => {
  for (const state of ['received', 'failed', 'aborted'] as const) assert.deepEqual(machine.onReceiveFailed(transfer(state), new Error('late'), NOW), []);
  assert.deepEqual(machine.onReceiveFailed(undefined, new Error('late'), NOW), []);
});

test('abort: refused while receiving (409), not found when unknown (404)', () => {
  assert.throws(() => machine.endTransfer(ID, transfer('receiving')), (e: SnapferryError) => e.code === 'transfer_receiving' && statusOf(e) === 409);
  assert.throws(() => machine.endTransfer(ID, undefined), (e: SnapferryError) => e.code === 'not_found' && statusOf(e) === 404);
});

test('abort of one in progress: its receive stops, its spool goes, then it is aborted', () => {
  for (const state of ['uploading', 'verifying', 'waiting_for_space', 'waiting_to_retry'] as const) {
    const steps = machine.endTransfer(ID, transfer(state));
    assert.deepEqual(steps, [
      { kind: 'stopReceive', why: 'the upload was aborted' }, { kind: 'dropSpool' }, { kind: 'forgetRetries' }, { kind: 'record', change: { state: 'aborted' } },
    ]);
    assert.equal(assertMovesAllowed(state, steps), 'aborted');
  }
});

test('abort of one that is over: only the spool it kept goes (reported), and a receive that still runs stops first; its state stays; a received one has none', () => {
  for (const state of ['failed', 'aborted'] as const) {
    const steps = machine.endTransfer(ID, transfer(state));
    assert.deepEqual(steps, [{ kind: 'stopReceive', why: `the ${state} transfer was aborted` }, { kind: 'dropSpool', report: { state } }]);
    assert.equal(assertMovesAllowed(state, steps), state);
  }
  assert.deepEqual(machine.endTransfer(ID, transfer('received')), []);
});

test('a creation refused after its upload began: the upload fails with the refusal (not aborted: nobody aborted it), its receive stopped and its spool gone', () => {
  const refusal = new FrameError('frame_corrupt', 'frame 0 does not verify', { frameIndex: 0, wireOffset: 0 });
  const steps = machine.onCreationRefused(transfer('uploading'), refusal, NOW);
  assert.deepEqual(steps.slice(0, 4), [
    { kind: 'stopReceive', why: 'its creation was refused: frame 0 does not verify' }, { kind: 'dropSpool' }, { kind: 'forgetRetries' },
    { kind: 'record', change: { state: 'failed', error: { code: 'frame_corrupt', message: 'frame 0 does not verify', at: NOW } } },
  ]);
  assert.deepEqual(kinds(steps.slice(4)), ['log']);
  assert.equal(assertMovesAllowed('uploading', steps), 'failed');
});

test('a creation refused after its upload began that failed already (frame 0 refused) keeps its own error and loses its spool; a whole stream goes on; an unknown one is nothing', () => {
  const refusal = new SnapferryError('stream_metadata_mismatch', 'another snapshot');
  for (const state of ['failed', 'aborted'] as const) {
    assert.deepEqual(machine.onCreationRefused(transfer(state), refusal, NOW), machine.endTransfer(ID, transfer(state)));
    assert.deepEqual(records(machine.onCreationRefused(transfer(state), refusal, NOW)), []);
  }
  for (const state of ['receiving', 'waiting_for_space', 'waiting_to_retry', 'received'] as const) assert.deepEqual(machine.onCreationRefused(transfer(state), refusal, NOW), [], state);
  assert.deepEqual(machine.onCreationRefused(undefined, refusal, NOW), []);
});

test('at start, a transfer in progress on a parent changed by hand fails with parent_altered; a waiting one goes through receiving', () => {
  const altered = parent({ altered: { foundAt: NOW, what: ['received_uuid_lost'] } });
  for (const state of inProgressStates) {
    const steps = machine.failOnAlteredParent(transfer(state, { parentUuid: PARENT }), altered, NOW);
    const changes = records(steps);
    assert.equal(changes.at(-1)?.state, 'failed', state);
    assert.equal(changes.at(-1)?.error?.code, 'parent_altered');
    assert.equal(changes.length, state.startsWith('waiting_') ? 2 : 1, state);
    assert.equal(assertMovesAllowed(state, steps), 'failed');
  }
});

test('at start, nothing happens to a full send, an intact parent, a parent gone from the catalog, or a transfer that is over', () => {
  const altered = parent({ altered: { foundAt: NOW, what: ['not_read_only'] } });
  assert.deepEqual(machine.failOnAlteredParent(transfer('uploading'), altered, NOW), []);
  assert.deepEqual(machine.failOnAlteredParent(transfer('uploading', { parentUuid: PARENT }), parent(), NOW), []);
  assert.deepEqual(machine.failOnAlteredParent(transfer('uploading', { parentUuid: PARENT }), undefined, NOW), []);
  for (const state of ['received', 'failed', 'aborted'] as const) assert.deepEqual(machine.failOnAlteredParent(transfer(state, { parentUuid: PARENT }), altered, NOW), []);
});

test('an upload whose parent the catalog no longer holds fails with parent_missing; a full send, a held parent, a transfer past its upload do not', () => {
  const change = machine.failOnMissingParent(transfer('uploading', { parentUuid: PARENT }), [], NOW);
  assert.equal(change?.state, 'failed');
  assert.equal(change?.error?.code, 'parent_missing');
  assert.equal(machine.failOnMissingParent(transfer('uploading'), [], NOW), null);
  assert.equal(machine.failOnMissingParent(transfer('uploading', { parentUuid: PARENT }), [parent()], NOW), null);
  for (const state of transferStates.filter((s) => s !== 'uploading')) assert.equal(machine.failOnMissingParent(transfer(state, { parentUuid: PARENT }), [], NOW), null, state);
});

test('a cut upload counts one more interruption and says where; one not uploading takes no note', () => {
  const steps = machine.noteInterruption(transfer('uploading'), 4096, 5, NOW);
  assert.deepEqual(records(steps), [{ interruptions: 3, lastInterruption: `${NOW}: cut at byte 4096 (after 5 verified frames)` }]);
  assert.deepEqual(kinds(steps), ['record', 'log']);
  for (const state of transferStates.filter((s) => s !== 'uploading')) assert.deepEqual(machine.noteInterruption(transfer(state), 4096, 5, NOW), []);
  assert.deepEqual(machine.noteInterruption(undefined, 0, 0, NOW), []);
});

test('a PATCH the server refused says so in the status, a full disk by name: "cut" sent the operator looking at the line', () => {
  const full = machine.noteInterruption(transfer('uploading'), 4096, 5, NOW, 'disk_full');
  assert.deepEqual(records(full), [{ interruptions: 3, lastInterruption: `${NOW}: refused, the server's disk full, at byte 4096 (after 5 verified frames)` }]);
  const corrupt = machine.noteInterruption(transfer('uploading'), 4096, 5, NOW, 'frame_corrupt');
  assert.deepEqual(records(corrupt), [{ interruptions: 3, lastInterruption: `${NOW}: refused (frame_corrupt) at byte 4096 (after 5 verified frames)` }]);
});

test('only an upload in progress can be rewound (409 transfer_not_uploading)', () => {
  assert.doesNotThrow(() => machine.assertRewindable(transfer('uploading')));
  for (const state of transferStates.filter((s) => s !== 'uploading')) {
    assert.throws(() => machine.assertRewindable(transfer(state)), (e: SnapferryError) => e.code === 'transfer_not_uploading' && statusOf(e) === 409);
  }
});

test('a rewind cuts the spool back, starts the receive again from the first byte, and says from where to where', () => {
  const steps = machine.rewind(transfer('uploading'), 9, 4, NOW);
  assert.deepEqual(kinds(steps), ['rewindSpool', 'restartReceive', 'record', 'log']);
  assert.deepEqual(steps[0], { kind: 'rewindSpool', frames: 4 });
  assert.deepEqual(records(steps), [{ lastInterruption: `${NOW}: rewound from frame 9 to 4: the client's stream differs from there` }]);
  assert.throws(() => machine.rewind(transfer('receiving'), 9, 4, NOW), (e: SnapferryError) => e.code === 'transfer_not_uploading');
});
