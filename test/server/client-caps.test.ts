/** The per-client and total caps (server/client-caps.ts) that restore streams and verify jobs are held under. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../core/errors.ts';
import { ClientCaps } from '../../server/client-caps.ts';
import { errorBody, errorHeaders, statusOf } from '../../server/http-errors.ts';

const wording = { code: 'too_many_things', held: 'things on the server', serverHolds: (n: number) => `holds ${n} things` };
const caps = (maxPerClient: number, maxTotal: number) => new ClientCaps({ maxPerClient, maxTotal }, wording);

function refusal(fn: () => unknown): SnapferryError {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SnapferryError, String(err));
    return err;
  }
  assert.fail('not refused');
}

test('a client at its cap is refused while the total has room; another client is not', () => {
  const c = caps(2, 8);
  c.take('a');
  c.take('a');
  const e = refusal(() => c.take('a'));
  assert.equal(e.code, 'too_many_things');
  assert.equal(e.message, 'client a already has 2 things on the server, the limit is 2 (429): let them finish, then try again');
  assert.equal(e.retryable, true);
  assert.deepEqual(e.details, { client: 'a', maxPerClient: 2, retryAfterSeconds: 15 });
  c.take('b');
  assert.deepEqual([c.ofClient('a'), c.ofClient('b'), c.inAll()], [2, 1, 3]);
});

test('the total refuses a client below its own cap, and says it is the server\'s limit', () => {
  const c = caps(2, 3);
  c.take('a');
  c.take('b');
  c.take('c');
  const e = refusal(() => c.take('d'));
  assert.equal(e.message, 'the server holds 3 things, its limit (429); try again later');
  assert.deepEqual(e.details, { maxTotal: 3, retryAfterSeconds: 15 });
  assert.equal(c.ofClient('d'), 0, 'a refused take holds nothing');
  assert.equal(c.inAll(), 3);
});

test('a released slot is taken again; releasing twice gives back one slot, not two', () => {
  const c = caps(1, 2);
  const release = c.take('a');
  c.take('b');
  release();
  release();
  assert.deepEqual([c.ofClient('a'), c.ofClient('b'), c.inAll()], [0, 1, 1]);
  c.take('a');
  // Had the second release counted, the total would have room for a third.
  assert.equal(refusal(() => c.take('c')).details?.maxTotal, 2);
  assert.equal(refusal(() => c.take('a')).details?.maxPerClient, 1);
});

test('a per-client cap above the total is bounded by the total', () => {
  const c = caps(5, 2);
  c.take('a');
  c.take('a');
  assert.match(refusal(() => c.take('a')).message, /^the server holds 2 things/);
});

test('a limit that is not a whole number of at least 1 is a programming error', () => {
  for (const bad of [0, -1, 1.5, Number.NaN]) {
    assert.throws(() => caps(bad, 2), RangeError);
    assert.throws(() => caps(2, bad), RangeError);
  }
});

test('restore\'s and verify\'s refusals are 429 with Retry-After 15 at the edge', () => {
  for (const code of ['too_many_restores', 'too_many_verifies']) {
    const c = new ClientCaps({ maxPerClient: 1, maxTotal: 1 }, { ...wording, code });
    c.take('a');
    const e = refusal(() => c.take('a'));
    assert.equal(statusOf(e), 429, code);
    assert.equal(errorHeaders(errorBody(e))['Retry-After'], '15', code);
  }
});
