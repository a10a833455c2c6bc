import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseRestoreRequest } from '../../server/restore-request.ts';

const params = { volume: 'home', name: 's1' };
const chain = 'ab'.repeat(32);

test('skip: the bytes of the next frame the client holds, under one frame, and 0 when absent', () => {
  assert.equal(parseRestoreRequest(params, { chunkSize: '65536' }).skip, 0);
  assert.equal(parseRestoreRequest(params, { chunkSize: '65536', fromFrame: '3', chain, skip: '5000' }).skip, 5000);
  assert.equal(parseRestoreRequest(params, { chunkSize: '65536', skip: String(72 + 65536 - 1) }).skip, 72 + 65535);
  assert.throws(() => parseRestoreRequest(params, { chunkSize: '65536', skip: String(72 + 65536) }), /skip must be under one frame/);
  assert.throws(() => parseRestoreRequest(params, { chunkSize: '65536', skip: '-1' }), /skip/);
  assert.throws(() => parseRestoreRequest(params, { chunkSize: '65536', skip: '1e3x' }), /skip/);
});
