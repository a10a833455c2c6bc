/**
 * server/stream-start.ts parentChangedProblem, pure: an incremental's CLONE_CTRANSID (the client's parent now)
 * against the Send transid of the server's copy (the parent as it was sent). test/e2e/parent-changed.test.ts runs it
 * on real btrfs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parentChangedProblem } from '../../server/stream-start.ts';
import { statusOf } from '../../server/http-errors.ts';
import type { SendStreamHeader } from '../../core/wire/index.ts';

const PARENT = '22222222-2222-4222-8222-222222222222';
const incremental = (cloneCtransid: number): SendStreamHeader => ({
  kind: 'snapshot', version: 1, path: 'snap', uuid: '11111111-1111-4111-8111-111111111111', ctransid: 40, cloneUuid: PARENT, cloneCtransid,
});

test('the parent as it was sent (same transaction id): no problem', () => {
  assert.equal(parentChangedProblem(incremental(7), false, { name: 'home.1', sendTransid: 7 }), null);
});

test('the parent written to after it was sent: parent_changed, 409, not retryable, saying what happened and what to do', () => {
  const err = parentChangedProblem(incremental(12), false, { name: 'home.1', sendTransid: 7 });
  assert.ok(err);
  assert.equal(err.code, 'parent_changed');
  assert.equal(err.retryable, false);
  assert.equal(statusOf(err), 409);
  assert.equal(
    err.message,
    "the client's home.1, the parent of this incremental, was changed after it was sent (transaction id 12, 7 when the server " +
      "received it): received on the server's copy, this snapshot would differ from the client's. snapferry push sends it from " +
      'another parent or in full by itself. An older client does not, and is refused so even on a parent restored from the server: upgrade it.',
  );
  assert.deepEqual(err.details, { parent: 'home.1', parentUuid: PARENT, cloneCtransid: 12, sendTransid: 7 });
});

test('nothing to compare: a full send, a parent that is a received copy on the client, no Send transid on record, no parent on disk', () => {
  const full: SendStreamHeader = { kind: 'subvol', version: 1, path: 'snap', uuid: PARENT, ctransid: 7 };
  assert.equal(parentChangedProblem(full, false, { name: 'home.1', sendTransid: 7 }), null);
  assert.equal(parentChangedProblem(incremental(12), true, { name: 'home.1', sendTransid: 7 }), null, 'a restore sends its own ctransid');
  assert.equal(parentChangedProblem(incremental(12), false, { name: 'home.1', sendTransid: 0 }), null, 'btrfs recorded none');
  assert.equal(parentChangedProblem(incremental(12), false, null), null, 'receive fails on a missing parent by itself');
});
