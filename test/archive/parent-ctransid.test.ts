/**
 * server/archive/parent-ctransid.ts, pure: what an archive records of the ctransid each stream was sent at, and when
 * it refuses an incremental's frame 0 as `parent_changed` (the parent's ctransid now, from a plain stream's first
 * command or a sealed stream's declaration, against the one recorded with the parent). test/e2e/archive-changed-parent.test.ts
 * runs it on a real RGW and real btrfs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statusOf } from '../../server/http-errors.ts';
import { parentChangedInArchive, parentNow, plainStreamStart, sentCtransid } from '../../server/archive/parent-ctransid.ts';
import { SendStreamBuilder } from '../fixtures/send-streams.ts';

const UUID = '11111111-1111-4111-8111-111111111111';
const PARENT = '22222222-2222-4222-8222-222222222222';
const OTHER = '33333333-3333-4333-8333-333333333333';
const KEY = '0123456789abcdef';

/** Frame 0's raw bytes of a plain incremental whose first command carries these ctransids. */
const incremental = (ctransid: number, parentCtransid: number, parent = PARENT): Buffer =>
  new SendStreamBuilder().snapshot(UUID, UUID, parent, ctransid, parentCtransid).file('a', Buffer.from('x')).build();
const full = (ctransid: number): Buffer => new SendStreamBuilder().subvol(UUID, UUID, ctransid).build();
const SEALED = { raw: null };

const record = (over: { parentCtransid?: number | null; parentReceived?: boolean; parentUuid?: string | null } = {}) => ({ parentUuid: PARENT, ...over });
const parent = (ctransid: number | null | undefined) => ({ name: 's1', ...(ctransid === undefined ? {} : { ctransid }) });

test('the ctransid a stream was sent at: a plain stream\'s own first command, a sealed one\'s declaration', () => {
  assert.equal(sentCtransid({ uuid: UUID, ctransid: 99 }, null, plainStreamStart(full(40))), 40, 'plain: the stream, not the client\'s word');
  assert.equal(sentCtransid({ uuid: UUID, ctransid: 99 }, null, plainStreamStart(incremental(41, 7))), 41);
  assert.equal(sentCtransid({ uuid: UUID, ctransid: 99 }, KEY, null), 99, 'sealed: the declaration');
  assert.equal(sentCtransid({ uuid: UUID }, KEY, null), null, 'an older client declared none');
  assert.equal(sentCtransid({ uuid: OTHER, ctransid: 99 }, null, plainStreamStart(full(40))), null, 'a frame 0 of another subvolume says nothing of this one');
  assert.equal(sentCtransid({ uuid: UUID, ctransid: 99 }, null, plainStreamStart(Buffer.from('not a send stream'))), null);
});

test('the parent now: a plain incremental\'s CLONE_CTRANSID, a sealed one\'s declaration; nothing where neither says', () => {
  assert.deepEqual(parentNow(record(), { raw: incremental(41, 7) }), plainStreamStart(incremental(41, 7)));
  assert.deepEqual(parentNow(record({ parentCtransid: 12 }), SEALED), { kind: 'snapshot', cloneUuid: PARENT, cloneCtransid: 12 });
  assert.equal(parentNow(record(), SEALED), null, 'a sealed stream from an older client');
  assert.equal(parentNow(record({ parentCtransid: null }), SEALED), null);
  assert.equal(parentNow(record(), { raw: incremental(41, 7, OTHER) }), null, 'names another parent than the upload: its ctransid is not this parent\'s');
  assert.equal(parentNow(record(), { raw: Buffer.from('random plain bytes') }), null, 'no send stream\'s start: stored as before');
  assert.equal(parentNow(record({ parentUuid: null }), { raw: full(40) }), null, 'a full send');
});

test('a parent changed after it was sent: parent_changed, 409, not retryable, in a btrfs server\'s words, plain and sealed alike', () => {
  for (const [first, rec] of [[{ raw: incremental(41, 12) }, record()], [SEALED, record({ parentCtransid: 12 })]] as const) {
    const err = parentChangedInArchive(rec, first, parent(7));
    assert.ok(err);
    assert.deepEqual([err.code, err.retryable, statusOf(err)], ['parent_changed', false, 409]);
    assert.match(err.message, /^the client's s1, the parent of this incremental, was changed after it was sent \(transaction id 12, 7 when the server received it\)/);
    assert.deepEqual(err.details, { parent: 's1', parentUuid: PARENT, cloneCtransid: 12, sendTransid: 7 });
  }
});

test('not judged: the parent as it was sent, a parent restored on the client, a parent stored before ctransids were recorded, an older client\'s sealed stream', () => {
  assert.equal(parentChangedInArchive(record(), { raw: incremental(41, 7) }, parent(7)), null);
  assert.equal(parentChangedInArchive(record({ parentCtransid: 7 }), SEALED, parent(7)), null);
  assert.equal(parentChangedInArchive(record({ parentReceived: true }), { raw: incremental(41, 12) }, parent(7)), null, 'a restore sends its own ctransid');
  assert.equal(parentChangedInArchive(record({ parentReceived: true, parentCtransid: 12 }), SEALED, parent(7)), null);
  assert.equal(parentChangedInArchive(record(), { raw: incremental(41, 12) }, parent(undefined)), null, 'an entry older than the field');
  assert.equal(parentChangedInArchive(record(), { raw: incremental(41, 12) }, parent(null)), null, 'an older client\'s sealed parent');
  assert.equal(parentChangedInArchive(record(), SEALED, parent(7)), null, 'an older client\'s sealed incremental');
});
