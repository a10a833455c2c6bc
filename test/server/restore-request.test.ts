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

test('parentCtransid: a whole number with a parent only, absent when not given', () => {
  const parent = '0b5d7c6e-1f2a-4b3c-8d4e-5f6a7b8c9d0e';
  assert.equal(parseRestoreRequest(params, { chunkSize: '65536', parent }).parentCtransid, undefined);
  assert.equal(parseRestoreRequest(params, { chunkSize: '65536', parent, parentCtransid: '1234' }).parentCtransid, 1234);
  assert.throws(() => parseRestoreRequest(params, { chunkSize: '65536', parentCtransid: '1234' }), /parentCtransid goes with parent only/);
  assert.throws(() => parseRestoreRequest(params, { chunkSize: '65536', parent, parentCtransid: 'x' }), /parentCtransid/);
});

test('a missing chunk size says it is required and what it may be, not that null is not a number', () => {
  for (const query of [{}, { chunkSize: '' }]) {
    assert.throws(() => parseRestoreRequest(params, query), /^ValidationError: chunkSize=BYTES is required: the frames' chunk size, 65536\.\.16777216 bytes/);
  }
  assert.throws(() => parseRestoreRequest(params, { chunkSize: '1' }), /chunkSize must be 65536\.\.16777216 bytes, not 1/);
});
