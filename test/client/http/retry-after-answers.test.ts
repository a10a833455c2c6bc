/**
 * Where a refusal becomes a SnapferryError, the server's Retry-After becomes `details.retryAfterMs`: for tus
 * answers (uploadErrorFrom) and for the JSON API (ServerApi, over a real socket).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DetailedError } from 'tus-js-client';
import { uploadErrorFrom } from '../../../client/upload/tus.ts';
import { ServerApi } from '../../../client/http/api.ts';
import { retryAfterOf } from '../../../client/http/retry-after.ts';
import { ERROR_CODE_HEADER } from '../../../core/protocol.ts';

function refused(status: number, body: string, headers: Record<string, string> = {}): DetailedError {
  const res = { getStatus: () => status, getBody: () => body, getHeader: (name: string) => headers[name.toLowerCase()], getUnderlyingObject: () => null };
  return Object.assign(new Error(`response code ${status}`), { originalResponse: res, originalRequest: null, causingError: null }) as unknown as DetailedError;
}

const busy = (seconds?: number) =>
  JSON.stringify({ error: { code: 'server_busy', message: 'busy', retryable: true, details: seconds === undefined ? {} : { retryAfterSeconds: seconds } } });

test('a tus refusal carries the Retry-After it came with, from the header, else from the body', () => {
  assert.equal(retryAfterOf(uploadErrorFrom(refused(503, busy(30), { 'retry-after': '7' }))), 7000, 'the header wins');
  assert.equal(retryAfterOf(uploadErrorFrom(refused(503, busy(30)))), 30_000, 'the body when a proxy dropped the header');
  assert.equal(retryAfterOf(uploadErrorFrom(refused(503, busy()))), null);
  // A HEAD's answer: no body, the code header and Retry-After.
  const head = uploadErrorFrom(refused(429, '', { [ERROR_CODE_HEADER]: 'too_many_connections', 'retry-after': '10' }));
  assert.equal(head.code, 'too_many_connections');
  assert.equal(head.retryable, true);
  assert.equal(retryAfterOf(head), 10_000);
  const date = new Date(Date.now() + 60_000).toUTCString();
  const fromDate = retryAfterOf(uploadErrorFrom(refused(429, 'Too Many Requests', { 'retry-after': date })));
  assert.ok(fromDate !== null && fromDate > 55_000 && fromDate <= 60_000, `an HTTP-date: ${fromDate}`);
});

test("a proxy's bare 429 is retryable, like a 5xx", () => {
  const err = uploadErrorFrom(refused(429, '<html>429 Too Many Requests</html>', { 'retry-after': '3' }));
  assert.equal(err.retryable, true);
  assert.equal(retryAfterOf(err), 3000);
});

test('a JSON API refusal carries Retry-After, over a real socket', async (t) => {
  const answers = [
    { status: 429, headers: { 'retry-after': '12', [ERROR_CODE_HEADER]: 'too_many_connections' }, body: JSON.stringify({ error: { code: 'too_many_connections', message: 'too many', retryable: true, details: { retryAfterSeconds: 12 } } }) },
    { status: 429, headers: { 'retry-after': '4' }, body: 'slow down' },
  ];
  const server = http.createServer((_req, res) => {
    const a = answers.shift()!;
    res.writeHead(a.status, { 'content-type': 'application/json', ...a.headers }).end(a.body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => server.close(() => r())));
  const api = new ServerApi({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
  const first = await api.status().then(() => null, (e: unknown) => e);
  assert.equal((first as { code?: string }).code, 'too_many_connections');
  assert.equal(retryAfterOf(first), 12_000);
  const bare = await api.status().then(() => null, (e: unknown) => e);
  assert.equal((bare as { code?: string; retryable?: boolean }).code, 'http_error');
  assert.equal((bare as { retryable?: boolean }).retryable, true);
  assert.equal(retryAfterOf(bare), 4000);
});
