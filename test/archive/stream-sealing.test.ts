// How the archive knows each stored stream's sealing (server/archive/stream-sealing.ts), without S3: a recorded one is
// taken as it is; one stored before sealings were recorded is read from its stream once, and a failed read is not
// kept; an incremental sealed otherwise than its parent is sealing_mismatch (409).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { SnapferryError } from '../../core/errors.ts';
import { deriveKeys } from '../../core/crypto/keys.ts';
import { FrameEncoder, streamIdentity } from '../../core/wire/index.ts';
import { statusOf } from '../../server/http-errors.ts';
import type { ObjectStore } from '../../server/archive/object-store.ts';
import type { Manifest } from '../../server/archive/manifest.ts';
import type { CatalogEntry } from '../../server/archive/volume-catalog.ts';
import { assertSealedAsParent, StoredSealings } from '../../server/archive/stream-sealing.ts';

const KEY = deriveKeys(Buffer.alloc(32, 7));
const SEGMENT = 'uploads/0123456789abcdef0123456789abcdef/seg-0000000000-0000000001-0000000000000000-0000000000000000';

/** A sealed stream's bytes, as a segment holds them. */
async function sealedWire(): Promise<Buffer> {
  const encoder = new FrameEncoder({ chunkSize: 64 * 1024, seal: { key: KEY, stream: streamIdentity('u', null) } });
  const parts: Buffer[] = [];
  encoder.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise((resolve, reject) => encoder.on('end', resolve).on('error', reject));
  encoder.end(Buffer.alloc(100_000, 1));
  await done;
  return Buffer.concat(parts);
}

/** Just what StoredSealings reads (get, getRange), counted; `fail` makes the next read throw. */
function fakeStore(objects: Map<string, Buffer>): ObjectStore & { reads: number; fail: boolean } {
  const store = {
    reads: 0,
    fail: false,
    async get(key: string) {
      store.reads++;
      if (store.fail) {
        store.fail = false;
        throw new SnapferryError('store_unavailable', 'the store is down a moment', { retryable: true });
      }
      const body = objects.get(key);
      return body === undefined ? null : { body, etag: 'e', date: new Date() };
    },
    async getRange(key: string, start: number, end: number) {
      store.reads++;
      return objects.get(key)!.subarray(start, end);
    },
    putIfAbsent: () => assert.fail('no writes'),
    swap: () => assert.fail('no writes'),
    list: () => assert.fail('no lists'),
    delete: () => assert.fail('no deletes'),
  };
  return store as unknown as ObjectStore & { reads: number; fail: boolean };
}

function entry(sealedBy?: string | null): CatalogEntry {
  return {
    name: 's1', uuid: 'u', parentUuid: null, transferId: '0123456789abcdef0123456789abcdef', chunkSize: 64 * 1024, rawBytes: 100_000, wireBytes: 1,
    storedAt: new Date().toISOString(), createdAt: null, takenAt: null, manifest: 'streams/default/v/u/manifest.json',
    ...(sealedBy !== undefined ? { sealedBy } : {}),
  };
}

test('a recorded sealing is the answer; an entry without one is read from its stream once, and a failed read is tried again', async () => {
  const wire = await sealedWire();
  const manifest: Manifest = {
    version: 1, client: 'default', volume: 'v', snapshot: 's1', uuid: 'u', parentUuid: null, transferId: '0123456789abcdef0123456789abcdef',
    chunkSize: 64 * 1024, frames: 2, wireBytes: wire.length, rawBytes: 100_000, chain: '00'.repeat(32),
    segments: [{ key: SEGMENT, first: 0, last: 2, wireStart: 0, wireEnd: wire.length, rawEnd: 100_000, chain: '00'.repeat(32), end: true }],
  };
  const store = fakeStore(new Map([[entry().manifest, Buffer.from(JSON.stringify(manifest))], [SEGMENT, wire]]));
  const sealings = new StoredSealings(store);
  assert.equal(await sealings.of(entry(null)), null);
  assert.equal(await sealings.of(entry('00112233aabbccdd')), '00112233aabbccdd');
  assert.equal(store.reads, 0, 'a recorded sealing reads nothing');

  store.fail = true;
  await assert.rejects(sealings.of(entry()), (err: unknown) => err instanceof SnapferryError && err.code === 'store_unavailable');
  const reads = store.reads;
  assert.equal(await sealings.of(entry()), KEY.id.toString('hex'));
  assert.equal(store.reads, reads + 2, 'the manifest, then the start of the first segment');
  assert.equal(await sealings.of(entry()), KEY.id.toString('hex'));
  assert.equal(store.reads, reads + 2, 'kept: a stored stream never changes');
});

test('an incremental sealed otherwise than its parent is sealing_mismatch, 409, not retryable; sealed the same, it passes', () => {
  const stream = (sealing: string | null) => ({ volume: 'v', snapshot: 's2', sealing });
  assertSealedAsParent(stream(null), { name: 's1', sealing: null });
  assertSealedAsParent(stream('aa'), { name: 's1', sealing: 'aa' });
  for (const [mine, parent] of [['aa', null], [null, 'aa'], ['aa', 'bb']] as const) {
    assert.throws(() => assertSealedAsParent(stream(mine), { name: 's1', sealing: parent }), (err: unknown) => {
      assert.ok(err instanceof SnapferryError);
      assert.deepEqual([err.code, err.retryable, statusOf(err)], ['sealing_mismatch', false, 409]);
      return true;
    });
  }
});
