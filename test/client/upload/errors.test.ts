/**
 * How the client reads the server's refusals of its tus requests: the JSON error when there is one, else the error
 * code header (a HEAD's answer has no body), else what tus itself means by the status.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { DetailedError } from 'tus-js-client';
import { uploadErrorFrom } from '../../../client/upload/tus.ts';
import { ERROR_CODE_HEADER } from '../../../core/protocol.ts';

function refused(status: number, body: string, headers: Record<string, string> = {}): DetailedError {
  const res = { getStatus: () => status, getBody: () => body, getHeader: (name: string) => headers[name.toLowerCase()], getUnderlyingObject: () => null };
  return Object.assign(new Error(`response code ${status}`), { originalResponse: res, originalRequest: null, causingError: null }) as unknown as DetailedError;
}

test('a refused HEAD names its reason from the error code header', () => {
  const err = uploadErrorFrom(refused(409, '', { [ERROR_CODE_HEADER]: 'transfer_locked' }));
  assert.equal(err.code, 'transfer_locked');
  assert.equal(err.retryable, true);
  assert.match(err.message, /another push holds this upload/);
  const other = uploadErrorFrom(refused(503, '', { [ERROR_CODE_HEADER]: 'disk_full' }));
  assert.equal(other.code, 'disk_full');
  assert.match(other.message, /503 \(disk_full\)/);
});

test('a JSON error body wins over the header, and a bare 404 still means the upload is gone', () => {
  const body = JSON.stringify({ error: { code: 'offset_mismatch', message: 'the request is at another offset', retryable: true } });
  assert.equal(uploadErrorFrom(refused(409, body, { [ERROR_CODE_HEADER]: 'offset_mismatch' })).message, 'the request is at another offset');
  assert.equal(uploadErrorFrom(refused(404, '')).code, 'upload_gone');
});
