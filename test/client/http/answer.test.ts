/**
 * Answers without a snapferry error body, read the same way by both HTTP stacks: a proxy's 502/503/504 page says the
 * server behind it is down (retryable, the page never shown), nginx's "plain HTTP to HTTPS port" says the scheme, a
 * bare 409 names its cause. And an upload URL on http:// for an https:// server is refused before it is followed.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DetailedError } from 'tus-js-client';
import { schemeMismatch, uploadErrorFrom } from '../../../client/upload/tus.ts';

const NGINX_502 = '<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.22.1</center>\r\n</body>\r\n</html>\r\n';
const NGINX_400_PLAIN = '<html><head><title>400 The plain HTTP request was sent to HTTPS port</title></head></html>';

function refused(status: number, body: string): DetailedError {
  const res = { getStatus: () => status, getBody: () => body, getHeader: () => undefined, getUnderlyingObject: () => null };
  return Object.assign(new Error(`response code ${status}`), { originalResponse: res, originalRequest: null, causingError: null }) as unknown as DetailedError;
}

test("a proxy's 502, 503 or 504 page on an upload: the server behind it is down, retryable, and the page is not shown", () => {
  for (const status of [502, 503, 504]) {
    const err = uploadErrorFrom(refused(status, NGINX_502.replaceAll('502', String(status))), 'https://backup.example.net');
    assert.equal(err.code, 'upstream_down');
    assert.equal(err.retryable, true);
    assert.match(err.message, new RegExp(`https://backup\\.example\\.net answered ${status}: the snapferry server behind it is down`));
    assert.doesNotMatch(err.message, /<|nginx\//);
  }
});

test('nginx saying plain HTTP reached its HTTPS port is a wrong scheme, not retryable', () => {
  const err = uploadErrorFrom(refused(400, NGINX_400_PLAIN), 'http://backup.example.net:443');
  assert.equal(err.code, 'wrong_scheme');
  assert.equal(err.retryable, false);
  assert.match(err.message, /give --server as https:\/\/backup\.example\.net:443/);
});

test('a 409 without a body names its cause and is waited out; it never prints an empty body', () => {
  const err = uploadErrorFrom(refused(409, ''), 'https://backup.example.net');
  assert.equal(err.code, 'upload_busy');
  assert.equal(err.retryable, true);
  assert.match(err.message, /another push holds this upload/);
  assert.doesNotMatch(err.message, /answered 409: ?;|: $/);
});

test('an upload URL on plain http:// for an https:// server is refused, naming --behind-proxy and publicUrl', () => {
  const err = schemeMismatch('https://backup.example.net', 'http://backup.example.net/v1/uploads/abc');
  assert.equal(err?.code, 'upload_url_not_https');
  assert.equal(err?.retryable, false);
  assert.match(err!.message, /--behind-proxy.*publicUrl/);
  assert.equal(schemeMismatch('https://backup.example.net', 'https://backup.example.net/v1/uploads/abc'), null);
  assert.equal(schemeMismatch('https://backup.example.net', '/v1/uploads/abc'), null, 'a relative Location keeps the scheme');
  assert.equal(schemeMismatch('http://127.0.0.1:8080', 'http://127.0.0.1:8080/v1/uploads/abc'), null);
});

test('an upload URL on https:// for an http:// server is refused, naming the --server to give and publicUrl', () => {
  const err = schemeMismatch('http://127.0.0.1:8080', 'https://backup.example.net/sf/v1/uploads/abc');
  assert.equal(err?.code, 'upload_url_scheme_mismatch');
  assert.equal(err?.retryable, false);
  assert.match(err!.message, /https:\/\/ \(https:\/\/backup\.example\.net\) although --server is http:\/\/ \(http:\/\/127\.0\.0\.1:8080\).*give --server as https:\/\/backup\.example\.net\/sf, or fix publicUrl/);
});
