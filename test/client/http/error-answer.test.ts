/**
 * errorFromAnswer, the one reading of an error answer for the JSON API and the restore's requests: the server's
 * ErrorBody when there is one (its retryable word, or any 5xx but those only an admin can mend), else the meaning of
 * the bare status; the Retry-After asked for in both, the header before the body's retryAfterSeconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorFromAnswer } from '../../../client/http/api.ts';

const ORIGIN = 'https://backup.example.net';
const WHAT = `GET ${ORIGIN}/v1/status`;
const headers = (h: Record<string, string> = {}) => new Headers(h);
const body = (code: string, retryable: boolean, details?: Record<string, unknown>) => JSON.stringify({ error: { code, message: `${code} here`, retryable, ...(details ? { details } : {}) } });

test("the server's error body: its code, message and details, the status kept, retryable as it says", () => {
  const err = errorFromAnswer(409, body('snapshot_uuid_taken', false, { uuid: 'u1' }), headers(), ORIGIN, WHAT);
  assert.deepEqual([err.code, err.message, err.status, err.retryable, err.details], ['snapshot_uuid_taken', 'snapshot_uuid_taken here', 409, false, { uuid: 'u1' }]);
  assert.equal(errorFromAnswer(423, body('transfer_locked', true), headers(), ORIGIN, WHAT).retryable, true);
});

test('a 5xx with a body is tried again unless only the admin can mend it', () => {
  assert.equal(errorFromAnswer(500, body('internal', false), headers(), ORIGIN, WHAT).retryable, true);
  assert.equal(errorFromAnswer(500, body('archive_object_corrupt', false), headers(), ORIGIN, WHAT).retryable, false);
  assert.equal(errorFromAnswer(500, body('archive_format_unsupported', false), headers(), ORIGIN, WHAT).retryable, false);
});

test('Retry-After: the header first, else the body, beside the details the server gave', () => {
  const both = errorFromAnswer(503, body('server_busy', true, { retryAfterSeconds: 30, why: 'full' }), headers({ 'retry-after': '7' }), ORIGIN, WHAT);
  assert.deepEqual(both.details, { retryAfterSeconds: 30, why: 'full', retryAfterMs: 7000 });
  assert.equal(errorFromAnswer(503, body('server_busy', true, { retryAfterSeconds: 30 }), headers(), ORIGIN, WHAT).details?.retryAfterMs, 30_000);
  assert.deepEqual(errorFromAnswer(429, 'slow down', headers({ 'retry-after': '4' }), ORIGIN, WHAT).details, { retryAfterMs: 4000 });
  assert.deepEqual(errorFromAnswer(404, '', headers(), ORIGIN, WHAT).details, {});
});

test('no snapferry body (empty, HTML, JSON of another shape): what the status means from whatever answered', () => {
  const down = errorFromAnswer(502, '<html><h1>502 Bad Gateway</h1></html>', headers(), ORIGIN, WHAT);
  assert.deepEqual([down.code, down.status, down.retryable], ['upstream_down', 502, true]);
  assert.doesNotMatch(down.message, /</);
  const other = errorFromAnswer(404, JSON.stringify({ error: 'not found' }), headers(), ORIGIN, WHAT);
  assert.deepEqual([other.code, other.retryable], ['http_error', false]);
  assert.ok(other.message.startsWith(`${WHAT} answered 404 without a snapferry error`), other.message);
  assert.equal(errorFromAnswer(409, '', headers(), ORIGIN, WHAT).code, 'upload_busy');
});
