import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayChainOn, sealingOfListed } from '../../core/sealing.ts';

test('a listed snapshot: the server says its sealing; a btrfs server is plain; an older archive is unknown', () => {
  assert.equal(sealingOfListed({ sealedBy: '0123456789abcdef', storedStream: true }), '0123456789abcdef');
  assert.equal(sealingOfListed({ sealedBy: null, storedStream: true }), null);
  assert.equal(sealingOfListed({}), null, 'a btrfs server holds only plain streams');
  assert.equal(sealingOfListed({ storedStream: true }), undefined, 'an archive older than sealedBy');
});

test('an incremental is sealed as its parent is; an unknown parent takes a plain one only', () => {
  assert.equal(mayChainOn(null, null), true);
  assert.equal(mayChainOn('aa', 'aa'), true);
  assert.equal(mayChainOn('aa', null), false);
  assert.equal(mayChainOn(null, 'aa'), false);
  assert.equal(mayChainOn('aa', 'bb'), false);
  assert.equal(mayChainOn(null, undefined), true);
  assert.equal(mayChainOn('aa', undefined), false);
});
