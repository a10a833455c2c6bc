// What a push does when the server no longer has the upload it was sending (client/push/gone-upload.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Transfer } from '../../../core/protocol.ts';
import { EXIT, exitCodeFor } from '../../../client/exit-codes.ts';
import { abortedError, judgeGoneUpload, TRANSFER_ABORTED } from '../../../client/push/gone-upload.ts';

const ID = 'a'.repeat(32);
const transfer = (over: Partial<Transfer> = {}): Transfer => ({ id: ID, snapshot: 's1', state: 'uploading', wireOffset: 1234, error: null, ...over }) as Transfer;

test('an upload someone aborted stops the push: not retryable, exit 1, the message says what happened and what to do', () => {
  const verdict = judgeGoneUpload('home.1', ID, transfer({ state: 'aborted' }));
  assert.equal(verdict.kind, 'stop');
  if (verdict.kind !== 'stop') return;
  assert.equal(verdict.error.code, TRANSFER_ABORTED);
  assert.equal(verdict.error.retryable, false);
  assert.equal(verdict.error.message, `transfer ${ID} of home.1 was aborted on the server (snapferry abort); not sent again: push it again to start over`);
  assert.deepEqual(verdict.error.details, { transferId: ID });
  assert.equal(exitCodeFor(verdict.error), EXIT.failed);
  assert.deepEqual(abortedError('home.1', transfer()), verdict.error);
});

test('an upload the server expired starts over, and the next attempt says why (its expired note)', () => {
  const expired = transfer({ state: 'failed', error: { code: 'upload_expired', message: 'expired', at: '2026-12-06T00:00:00Z' } });
  assert.deepEqual(judgeGoneUpload('home.1', ID, expired), { kind: 'startOver', note: null });
});

test('an upload that failed otherwise, one the server lost, or one still listed in progress: a new attempt, saying why', () => {
  const failed = transfer({ state: 'failed', error: { code: 'parent_altered', message: 'its parent was changed', at: '2026-12-06T00:00:00Z' } });
  assert.deepEqual(judgeGoneUpload('home.1', ID, failed), {
    kind: 'startOver', note: `home.1: the server ended transfer ${ID} as failed: its parent was changed (parent_altered); starting over with a new upload`,
  });
  assert.deepEqual(judgeGoneUpload('home.1', ID, transfer({ state: 'failed' })), {
    kind: 'startOver', note: `home.1: the server ended transfer ${ID} as failed: no reason given; starting over with a new upload`,
  });
  assert.deepEqual(judgeGoneUpload('home.1', ID, null), {
    kind: 'startOver', note: `home.1: the server has no upload or record of transfer ${ID} any more (lost, or forgotten since); starting over with a new upload`,
  });
  assert.deepEqual(judgeGoneUpload('home.1', ID, transfer()), {
    kind: 'startOver', note: `home.1: the server no longer has the upload of transfer ${ID}, which it lists as uploading; asking it again`,
  });
});
