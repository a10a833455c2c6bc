import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mayChainOn, restoreRefusal, sealingOfListed } from '../../core/sealing.ts';

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

test("a restore's refusal of a stream's sealing, before its download: the receive's rules, at frame 0", () => {
  const refusal = (stream: string | null, configured: string | null) => {
    const err = restoreRefusal(stream, configured);
    return err === null ? null : [err.code, err.details, err.retryable];
  };
  // Opened as configured: no refusal.
  assert.equal(refusal(null, null), null);
  assert.equal(refusal('aa', 'aa'), null);
  // Sealed, no encrypt:: key_required. Sealed under another key: wrong_key, naming both. Plain with encrypt:: not_sealed.
  assert.deepEqual(refusal('aa', null), ['key_required', { frameIndex: 0 }, false]);
  assert.deepEqual(refusal('aa', 'bb'), ['wrong_key', { frameIndex: 0, frameKeyId: 'aa', keyId: 'bb' }, false]);
  assert.deepEqual(refusal(null, 'bb'), ['not_sealed', { frameIndex: 0, keyId: 'bb' }, false]);
  assert.match(restoreRefusal('aa', 'bb')!.message, /^sealed frame 0 was sealed with key aa, but the key file holds key bb: use the key file/);
});
