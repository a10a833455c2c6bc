import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../../core/errors.ts';
import { MAX_RETRY_AFTER_MS, chooseWait, parseRetryAfter, retryAfterDetails, retryAfterOf } from '../../../client/http/retry-after.ts';

// A fixed clock: 1994-11-06T08:49:37Z, the instant RFC 9110's examples use.
const NOW = Date.UTC(1994, 10, 6, 8, 49, 37);

test('Retry-After in delay-seconds is milliseconds from now', () => {
  assert.equal(parseRetryAfter('10', NOW), 10_000);
  assert.equal(parseRetryAfter(' 30 ', NOW), 30_000);
  assert.equal(parseRetryAfter('0', NOW), 0);
});

test('Retry-After as an HTTP-date, in all three forms RFC 9110 makes a recipient accept, is the time until then', () => {
  assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:50:07 GMT', NOW), 30_000);
  assert.equal(parseRetryAfter('Sunday, 06-Nov-94 08:50:07 GMT', NOW), 30_000);
  assert.equal(parseRetryAfter('Sun Nov  6 08:50:07 1994', NOW), 30_000);
  assert.equal(parseRetryAfter('Sun, 06 Nov 1994 08:49:00 GMT', NOW), 0, 'a date gone by is no wait');
});

test('a Retry-After that is neither form is no Retry-After', () => {
  for (const bad of [null, undefined, '', '-5', '1.5', '10s', 'soon', 'Sun, 06 Nov 1994 08:50:07 +0100', '2026-12-04T10:00:00Z']) {
    assert.equal(parseRetryAfter(bad, NOW), null, String(bad));
  }
});

test('the header wins over the JSON body; the body serves when a proxy dropped the header', () => {
  assert.deepEqual(retryAfterDetails('5', 30, NOW), { retryAfterMs: 5000 });
  assert.deepEqual(retryAfterDetails(null, 30, NOW), { retryAfterMs: 30_000 });
  assert.deepEqual(retryAfterDetails('junk', 30, NOW), { retryAfterMs: 30_000 });
  assert.deepEqual(retryAfterDetails(null, '30', NOW), {});
  assert.deepEqual(retryAfterDetails(null, undefined, NOW), {});
});

const refusal = (retryAfterMs?: number) =>
  new SnapferryError('server_busy', 'the server is busy', { retryable: true, details: retryAfterMs === undefined ? {} : { retryAfterMs } });

test('the wait is the longer of the own backoff and the server\'s Retry-After, and says why', () => {
  assert.deepEqual(chooseWait(1500, refusal()), { ms: 1500, because: null });
  const longer = chooseWait(1500, refusal(30_000));
  assert.equal(longer.ms, 30_000);
  assert.match(longer.because ?? '', /server_busy.*30 s.*the server is busy/);
  assert.equal(chooseWait(12_000, refusal(5000)).ms, 12_000, 'a shorter Retry-After does not shorten the backoff');
  assert.equal(retryAfterOf(new Error('plain')), null);
});

test('a Retry-After beyond the cap waits the cap, and says so', () => {
  const huge = chooseWait(1000, refusal(365 * 24 * 3600_000));
  assert.equal(huge.ms, MAX_RETRY_AFTER_MS);
  assert.match(huge.because ?? '', /capped at 600 s/);
  assert.equal(chooseWait(1000, refusal(60_000), 20_000).ms, 20_000);
});
