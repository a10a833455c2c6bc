import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../../core/errors.ts';
import { RetryNotes } from '../../../client/push/retry-notes.ts';

const failure = (code: string) => new SnapferryError(code, code, { retryable: true });

test('a full server disk is said once while it lasts, however many retries wait it out, and again after something else', () => {
  const said: string[] = [];
  const notes = new RetryNotes((text) => said.push(text));
  // What one round of a push against a full disk says: tus-js-client's retries, then the push's backoff.
  notes.retry(failure('disk_full'), 'out of disk space; resuming from the server\'s offset');
  notes.retry(failure('disk_full'), 'out of disk space; resuming from the server\'s offset');
  notes.retry(failure('disk_full'), 'out of disk space; trying again in 1.0 s');
  assert.deepEqual(said, ['out of disk space; resuming from the server\'s offset']);
  notes.retry(failure('connection_reset'), 'cut; resuming');
  notes.retry(failure('disk_full'), 'out of disk space again');
  assert.deepEqual(said.slice(1), ['cut; resuming', 'out of disk space again']);
});

test("a proxy's 502 while the server behind it restarts is said once while it lasts", () => {
  const said: string[] = [];
  const notes = new RetryNotes((text) => said.push(text));
  for (let i = 0; i < 5; i++) notes.retry(failure('upstream_down'), `the proxy answered 502: the server behind it is down; trying again in ${i + 1}.0 s`);
  assert.deepEqual(said, ['the proxy answered 502: the server behind it is down; trying again in 1.0 s']);
});

test('a cut is said every time: the reader sees the line\'s health', () => {
  const said: string[] = [];
  const notes = new RetryNotes((text) => said.push(text));
  notes.retry(failure('connection_reset'), 'cut');
  notes.retry(failure('connection_reset'), 'cut');
  assert.equal(said.length, 2);
});

test('once: a fact found again by every try is said the first time only', () => {
  const said: string[] = [];
  const notes = new RetryNotes((text) => said.push(text));
  notes.once('s2: the server no longer holds it');
  notes.once('s2: the server no longer holds it');
  assert.deepEqual(said, ['s2: the server no longer holds it']);
});

test('another holder of the upload is one wait, said once, whether it answers transfer_locked or a bare 409', () => {
  const said: string[] = [];
  const notes = new RetryNotes((text) => said.push(text));
  notes.retry(failure('transfer_locked'), 'another push holds this upload; trying again in 1.0 s');
  notes.retry(failure('upload_busy'), 'the server refused this request on the upload for now (409): another push holds this upload');
  notes.retry(failure('transfer_locked'), 'another push holds this upload; trying again in 2.0 s');
  assert.deepEqual(said, ['another push holds this upload; trying again in 1.0 s']);
  // Another cause is said, and so is the first again after it.
  notes.retry(failure('disk_full'), 'out of disk space');
  notes.retry(failure('upload_busy'), 'held again');
  assert.deepEqual(said.slice(1), ['out of disk space', 'held again']);
});
