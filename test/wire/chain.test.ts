import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { describe, it } from 'node:test';
import { CHAIN_ZERO, ChainHasher, chainStep, sha256 } from '../../core/wire/chain.ts';

const h = (s: string): Buffer => createHash('sha256').update(s).digest();

describe('chain hash', () => {
  it('starts at 32 zero bytes', () => {
    assert.equal(CHAIN_ZERO.length, 32);
    assert.ok(CHAIN_ZERO.every((b) => b === 0));
    const c = new ChainHasher();
    assert.equal(c.frames, 0);
    assert.deepEqual(c.digest(), CHAIN_ZERO);
  });

  it('steps as SHA-256(prev || rawHash), computed independently', () => {
    const r1 = h('chunk one');
    const r2 = h('chunk two');
    const c1 = createHash('sha256').update(Buffer.concat([Buffer.alloc(32), r1])).digest();
    const c2 = createHash('sha256').update(Buffer.concat([c1, r2])).digest();
    assert.deepEqual(chainStep(CHAIN_ZERO, r1), c1);
    const hasher = new ChainHasher();
    assert.deepEqual(hasher.update(r1), c1);
    assert.deepEqual(hasher.update(r2), c2);
    assert.equal(hasher.frames, 2);
    assert.deepEqual(hasher.digest(), c2);
    assert.deepEqual(sha256(Buffer.from('chunk one')), r1);
  });

  it('is order sensitive', () => {
    const [a, b] = [h('a'), h('b')];
    assert.notDeepEqual(chainStep(chainStep(CHAIN_ZERO, a), b), chainStep(chainStep(CHAIN_ZERO, b), a));
  });

  it('continues from a saved (chain, frames) exactly as an uninterrupted hasher', () => {
    const hashes = Array.from({ length: 10 }, (_, i) => h(`chunk ${i}`));
    const whole = new ChainHasher();
    for (const x of hashes) whole.update(x);
    const first = new ChainHasher();
    for (const x of hashes.slice(0, 4)) first.update(x);
    const resumed = new ChainHasher({ chain: first.digest(), frames: first.frames });
    for (const x of hashes.slice(4)) resumed.update(x);
    assert.deepEqual(resumed.digest(), whole.digest());
    assert.equal(resumed.frames, 10);
  });

  it('hands out copies, so a caller cannot change its state', () => {
    const c = new ChainHasher();
    c.digest().fill(0xff);
    assert.deepEqual(c.digest(), CHAIN_ZERO);
    const v = c.update(h('x'));
    v.fill(0);
    assert.notDeepEqual(c.digest(), CHAIN_ZERO);
  });

  it('rejects wrong sizes and impossible starts', () => {
    assert.throws(() => chainStep(Buffer.alloc(31), h('x')), /chainStep wants two 32-byte hashes, got 31 and 32/);
    assert.throws(() => chainStep(CHAIN_ZERO, Buffer.alloc(33)), /got 32 and 33/);
    assert.throws(() => new ChainHasher({ chain: Buffer.alloc(16), frames: 1 }), /chain must be 32 bytes/);
    assert.throws(() => new ChainHasher({ chain: h('x'), frames: 0 }), /the chain of 0 frames is c_0/);
    assert.throws(() => new ChainHasher({ chain: h('x'), frames: -1 }), /frames must be an integer >= 0/);
  });
});
