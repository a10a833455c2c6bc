/** A retry within an upload is said once the server answered it, never when it found the upload gone (client/upload/held-retries.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../../core/errors.ts';
import { HeldRetries } from '../../../client/upload/held-retries.ts';

const cut = new SnapferryError('network', 'write EPIPE', { retryable: true });
const refused = new SnapferryError('network', 'connect ECONNREFUSED', { retryable: true });
const gone = new SnapferryError('upload_gone', 'the server no longer has this upload (404)', { retryable: true });

function told() {
  const said: string[] = [];
  return { said, retries: new HeldRetries((err, attempt) => said.push(`${attempt} ${err.message}`)) };
}

test('retries are said once the server answers, in order; a 404 or 410 is no answer that says they went on', () => {
  const { said, retries } = told();
  retries.failed(cut, 0);
  retries.failed(refused, 1);
  assert.deepEqual(said, [], 'held while nothing answered');
  retries.answered(410);
  retries.answered(404);
  assert.deepEqual(said, []);
  retries.answered(204);
  assert.deepEqual(said, ['0 write EPIPE', '1 connect ECONNREFUSED']);
  retries.answered(204);
  assert.equal(said.length, 2, 'each said once');
});

test('an upload that ends gone drops what was held (the push says what that means); one that ends any other way says it', () => {
  const a = told();
  a.retries.failed(cut, 0);
  a.retries.ended(gone);
  a.retries.answered(204);
  assert.deepEqual(a.said, []);
  const b = told();
  b.retries.failed(cut, 0);
  b.retries.ended(new SnapferryError('upload_stalled', 'nothing moved', { retryable: true }));
  assert.deepEqual(b.said, ['0 write EPIPE']);
  const c = told();
  c.retries.failed(cut, 0);
  c.retries.ended(null);
  assert.deepEqual(c.said, ['0 write EPIPE']);
});

test('a retry nobody answers is said after the hold, not kept from the user until the upload ends', async () => {
  const said: string[] = [];
  const retries = new HeldRetries((err, attempt) => said.push(`${attempt} ${err.message}`), 50);
  retries.failed(refused, 0);
  assert.deepEqual(said, []);
  await new Promise((r) => setTimeout(r, 120));
  assert.deepEqual(said, ['0 connect ECONNREFUSED']);
  retries.answered(204);
  retries.ended(null);
  assert.equal(said.length, 1, 'said once');
  const quick = told();
  quick.retries.failed(cut, 0);
  quick.retries.ended(gone);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(quick.said, [], 'gone before the hold ends: dropped, and the timer with it');
});
