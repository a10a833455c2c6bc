// Client-side sealing (core/crypto/seal.ts), as properties over random keys, positions and payloads: a sealed frame
// opens to its payload, seals the same every time (a resumed upload regenerates the same bytes), never shares a nonce
// with a different payload, refuses every flipped bit as damage, and tells another key apart from damage.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createDecipheriv, createHmac, hkdfSync } from 'node:crypto';
import fc from 'fast-check';
import { deriveKeys } from '../../core/crypto/keys.ts';
import { openPayload, SEAL_HEADER_SIZE, SEAL_OVERHEAD, sealPayload, type SealPosition } from '../../core/crypto/seal.ts';
import { SealError } from '../../core/crypto/errors.ts';

const secret = fc.uint8Array({ minLength: 32, maxLength: 32 });
const position = fc.record({ index: fc.maxSafeNat(), stream: fc.uint8Array({ maxLength: 48 }) });
const payload = fc.uint8Array({ minLength: 0, maxLength: 4096 });
const NONCE = { from: 9, to: 21 };

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    assert.ok(err instanceof SealError, `not a SealError: ${String(err)}`);
    return err.code;
  }
  return 'opened';
}

test('a sealed payload opens to itself, and is the payload plus a fixed overhead', () => {
  fc.assert(
    fc.property(secret, position, payload, (s, at, p) => {
      const key = deriveKeys(s);
      const sealed = sealPayload(key, at, p);
      assert.equal(sealed.length, p.length + SEAL_OVERHEAD);
      assert.deepEqual(openPayload(key, at, sealed), Buffer.from(p));
    }),
  );
});

test('the same key, position and payload seal to the same bytes, also with the key derived again', () => {
  fc.assert(
    fc.property(secret, position, payload, (s, at, p) => {
      const once = sealPayload(deriveKeys(s), at, p);
      const again = sealPayload(deriveKeys(Uint8Array.from(s)), { index: at.index, stream: Uint8Array.from(at.stream) }, Uint8Array.from(p));
      assert.ok(once.equals(again), 'a regenerated frame sealed to other bytes: a resumed upload would not match');
    }),
  );
});

test('different payloads at the same position get different nonces; so do equal payloads at other positions', () => {
  fc.assert(
    fc.property(secret, position, payload, payload, (s, at, p, q) => {
      fc.pre(!Buffer.from(p).equals(Buffer.from(q)));
      const key = deriveKeys(s);
      const nonce = (b: Buffer) => b.subarray(NONCE.from, NONCE.to);
      assert.ok(!nonce(sealPayload(key, at, p)).equals(nonce(sealPayload(key, at, q))), 'two plaintexts under one nonce');
      const elsewhere: SealPosition = { index: at.index === 0 ? 1 : at.index - 1, stream: at.stream };
      assert.ok(!nonce(sealPayload(key, at, p)).equals(nonce(sealPayload(key, elsewhere, p))));
    }),
  );
});

test('any one flipped bit is refused as frame_corrupt, never opened and never taken for another key', () => {
  fc.assert(
    fc.property(secret, position, payload, fc.nat(), (s, at, p, bitSeed) => {
      const key = deriveKeys(s);
      const sealed = sealPayload(key, at, p);
      const bit = bitSeed % (sealed.length * 8);
      sealed[bit >> 3]! ^= 1 << (bit & 7);
      assert.equal(refusal(() => openPayload(key, at, sealed)), 'frame_corrupt', `bit ${bit} of ${sealed.length * 8}`);
    }),
  );
  // And every bit of the seal's header, where the key id is, one by one.
  const key = deriveKeys(new Uint8Array(32).fill(7));
  const sealed = sealPayload(key, { index: 5, stream: Buffer.from('vol') }, Buffer.from('payload'));
  for (let bit = 0; bit < SEAL_HEADER_SIZE * 8; bit++) {
    const copy = Buffer.from(sealed);
    copy[bit >> 3]! ^= 1 << (bit & 7);
    assert.equal(refusal(() => openPayload(key, { index: 5, stream: Buffer.from('vol') }, copy)), 'frame_corrupt', `header bit ${bit}`);
  }
});

test('a truncated or extended seal, or one moved to another position or stream, is refused as frame_corrupt', () => {
  fc.assert(
    fc.property(secret, position, payload, fc.nat(), (s, at, p, cut) => {
      const key = deriveKeys(s);
      const sealed = sealPayload(key, at, p);
      assert.equal(refusal(() => openPayload(key, at, sealed.subarray(0, cut % sealed.length))), 'frame_corrupt');
      assert.equal(refusal(() => openPayload(key, at, Buffer.concat([sealed, Buffer.of(0)]))), 'frame_corrupt');
      assert.equal(refusal(() => openPayload(key, { index: at.index === 0 ? 1 : at.index - 1, stream: at.stream }, sealed)), 'frame_corrupt');
      assert.equal(refusal(() => openPayload(key, { index: at.index, stream: Buffer.concat([at.stream, Buffer.of(1)]) }, sealed)), 'frame_corrupt');
    }),
  );
});

test('another key is refused as wrong_key, naming both key ids', () => {
  fc.assert(
    fc.property(secret, secret, position, payload, (s, t, at, p) => {
      fc.pre(!Buffer.from(s).equals(Buffer.from(t)));
      const right = deriveKeys(s);
      const wrong = deriveKeys(t);
      try {
        openPayload(wrong, at, sealPayload(right, at, p));
        assert.fail('opened with another key');
      } catch (err) {
        assert.ok(err instanceof SealError && err.code === 'wrong_key', String(err));
        assert.equal(err.details.frameKeyId, right.id.toString('hex'));
        assert.equal(err.details.keyId, wrong.id.toString('hex'));
        assert.match(err.message, /key file/);
        assert.equal(err.retryable, false);
      }
    }),
  );
});

test('the sealed layout is the one documented: HKDF keys, HMAC nonce over the AD and payload, AES-256-GCM', () => {
  // An independent reading of seal.ts's table, so that the format (which a resumed upload depends on byte for byte)
  // cannot drift without this test saying so.
  fc.assert(
    fc.property(secret, position, payload, (s, at, p) => {
      const sealed = sealPayload(deriveKeys(s), at, p);
      const hkdf = (info: string, n: number) => Buffer.from(hkdfSync('sha256', s, Buffer.alloc(0), info, n));
      const keyId = hkdf('snapferry key id v1', 8);
      assert.equal(sealed[0], 1);
      assert.ok(sealed.subarray(1, 9).equals(keyId));
      const streamLength = Buffer.alloc(4);
      streamLength.writeUInt32BE(at.stream.length);
      const index = Buffer.alloc(8);
      index.writeBigUInt64BE(BigInt(at.index));
      const ad = Buffer.concat([Buffer.from('snapferry seal v1\0'), Buffer.of(1), keyId, streamLength, at.stream, index]);
      const nonce = createHmac('sha256', hkdf('snapferry seal nonce v1', 32)).update(ad).update(p).digest().subarray(0, 12);
      assert.ok(sealed.subarray(9, 21).equals(nonce), 'the nonce is not HMAC(nonceKey, AD || payload)');
      const decipher = createDecipheriv('aes-256-gcm', hkdf('snapferry seal aes-256-gcm v1', 32), nonce);
      decipher.setAAD(ad);
      decipher.setAuthTag(sealed.subarray(sealed.length - 16));
      const plain = Buffer.concat([decipher.update(sealed.subarray(25, sealed.length - 16)), decipher.final()]);
      assert.ok(plain.equals(Buffer.from(p)));
    }),
    { numRuns: 50 },
  );
});

test('a frame index that is not a safe integer >= 0 is a programming error, not a seal', () => {
  const key = deriveKeys(new Uint8Array(32));
  for (const index of [-1, 0.5, Number.MAX_SAFE_INTEGER + 1, Number.NaN]) {
    assert.throws(() => sealPayload(key, { index, stream: new Uint8Array() }, Buffer.of(1)), RangeError);
  }
});
