// The ObjectStore over a real RGW (test/fixtures/s3.ts): each call does what its contract says, keys stay under the
// prefix, the server's Date comes back, and a dead endpoint or wrong keys become the typed errors callers act on.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { rootOnly } from '../fixtures/btrfs.ts';
import { freePort } from '../fixtures/local-port.ts';
import { SnapferryError } from '../../core/errors.ts';
import { statusOf } from '../../server/http-errors.ts';
import { s3ObjectStore, type ObjectStore } from '../../server/archive/object-store.ts';
import { sharedS3 } from './store-fixture.ts';

const s3 = sharedS3();
const md5 = (b: Buffer) => crypto.createHash('md5').update(b).digest('hex');

async function keys(store: ObjectStore, prefix: string): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

test('putIfAbsent creates once, swap replaces only from the current ETag, get returns body, unquoted ETag and the server Date', rootOnly, async () => {
  const store = (await s3.bucket()).store();
  const before = Date.now();
  const first = await store.putIfAbsent('a/k.json', Buffer.from('v0'));
  assert.ok(first);
  assert.equal(first.etag, md5(Buffer.from('v0')), 'the ETag is the unquoted MD5 RGW stores');
  // The Date header has whole seconds; the RGW runs on this machine, so its clock is ours.
  assert.ok(Math.abs(first.date.getTime() - before) < 5_000, `server date ${first.date.toISOString()} vs local ${new Date(before).toISOString()}`);
  assert.equal(await store.putIfAbsent('a/k.json', Buffer.from('other')), null);

  const got = await store.get('a/k.json');
  assert.ok(got);
  assert.equal(got.body.toString(), 'v0');
  assert.equal(got.etag, first.etag);
  assert.ok(got.date instanceof Date && !Number.isNaN(got.date.getTime()));

  const swapped = await store.swap('a/k.json', Buffer.from('v1'), first.etag);
  assert.ok(swapped);
  assert.equal(swapped.etag, md5(Buffer.from('v1')));
  assert.equal(await store.swap('a/k.json', Buffer.from('late'), first.etag), null, 'a swap from a stale ETag must fail');
  // A quoted ETag (as S3 sends it) is accepted too: the store strips the quotes RGW would refuse.
  assert.ok(await store.swap('a/k.json', Buffer.from('v2'), `"${swapped.etag}"`));
  assert.equal(await store.swap('absent.json', Buffer.from('x'), first.etag), null, 'a swap never creates');
  assert.equal((await store.get('a/k.json'))?.body.toString(), 'v2');
  assert.equal(await store.get('absent.json'), null);
});

test('20 racing putIfAbsent from 20 stores: exactly one creates', rootOnly, async () => {
  const b = await s3.bucket();
  const results = await Promise.all(Array.from({ length: 20 }, (_, i) => b.store().putIfAbsent('race', Buffer.from(`w${i}`))));
  assert.equal(results.filter((r) => r !== null).length, 1);
  assert.equal((await b.store().get('race'))?.body.toString(), `w${results.findIndex((r) => r !== null)}`);
});

test('racing swaps from 20 stores, 30 rounds: one wins each round, every loser gets null (RGW answers some losers 500)', rootOnly, async () => {
  const b = await s3.bucket();
  const stores = Array.from({ length: 20 }, () => b.store());
  await stores[0]!.putIfAbsent('cas', Buffer.from('start'));
  for (let round = 0; round < 30; round++) {
    // All from the one ETag read before the round (a racer reading later could rightly win from the winner's).
    const seen = await stores[0]!.get('cas');
    const results = await Promise.all(stores.map((store, i) => store.swap('cas', Buffer.from(`r${round}-w${i}`), seen!.etag)));
    const winners = results.flatMap((r, i) => (r ? [i] : []));
    assert.equal(winners.length, 1, `round ${round}: winners ${winners.join(',')}`);
    const now = await stores[0]!.get('cas');
    assert.equal(now?.body.toString(), `r${round}-w${winners[0]}`, `round ${round}: a loser's bytes are stored`);
    assert.equal(now?.etag, results[winners[0]!]!.etag);
  }
});

test('getRange returns exactly [start, end); list pages through every key under a prefix, relative to the store prefix', rootOnly, async () => {
  const b = await s3.bucket();
  const store = b.store('deep/prefix/');
  const blob = crypto.randomBytes(100_000);
  await store.putIfAbsent('seg', blob);
  assert.ok((await store.getRange('seg', 1000, 54321)).equals(blob.subarray(1000, 54321)));
  assert.equal((await store.getRange('seg', 7, 7)).length, 0);
  await assert.rejects(store.getRange('seg', 99_990, 100_010), { code: 'store_object_short' });
  await assert.rejects(store.getRange('nothing', 0, 10), { code: 'store_object_missing' });

  // More than one page (RGW's page is 1000 keys): 1005 keys, and one outside the listed prefix.
  const names = Array.from({ length: 1005 }, (_, i) => `uploads/u1/seg-${String(i).padStart(4, '0')}`);
  for (let i = 0; i < names.length; i += 50) await Promise.all(names.slice(i, i + 50).map((k) => store.putIfAbsent(k, Buffer.from(k))));
  await store.putIfAbsent('uploads/u2/state.json', Buffer.from('{}'));
  const listed: { key: string; size: number; lastModified: Date }[] = [];
  for await (const o of store.list('uploads/u1/')) listed.push(o);
  assert.deepEqual(listed.map((o) => o.key), names);
  assert.equal(listed[0]!.size, names[0]!.length);
  assert.ok(listed[0]!.lastModified.getTime() > Date.now() - 600_000);

  // The objects really are under the prefix in the bucket, and nothing is outside it.
  const admin = b.server.client();
  const raw = await admin.send(new ListObjectsV2Command({ Bucket: b.name, Prefix: 'deep/prefix/seg' }));
  admin.destroy();
  assert.deepEqual(raw.Contents?.map((o) => o.Key), ['deep/prefix/seg']);
  assert.deepEqual(await keys(b.store(''), 'deep/prefix/uploads/u2/'), ['deep/prefix/uploads/u2/state.json']);
});

test('delete removes a key and is quiet when it is absent', rootOnly, async () => {
  const store = (await s3.bucket()).store();
  await store.putIfAbsent('k', Buffer.from('x'));
  await store.delete('k');
  assert.equal(await store.get('k'), null);
  await store.delete('k');
  assert.ok(await store.putIfAbsent('k', Buffer.from('again')), 'a deleted key can be created again');
});

test('keys that could leave the prefix are refused before any request', rootOnly, async () => {
  const store = (await s3.bucket()).store();
  for (const bad of ['', '/abs', 'a/../b', 'a//b', 'dir/', './x']) {
    await assert.rejects(store.get(bad), /not a relative path/, bad);
  }
});

test('an S3 endpoint that is down gives store_unavailable, retryable, answered 503', rootOnly, async () => {
  const port = await freePort();
  const store = s3ObjectStore({ endpoint: `http://127.0.0.1:${port}`, bucket: 'b', prefix: 'p', accessKeyId: 'AK', secretAccessKey: 'secret' });
  for (const call of [() => store.get('k'), () => store.putIfAbsent('k', Buffer.from('x')), () => store.swap('k', Buffer.from('x'), 'e'), () => keys(store, '')]) {
    const err = await call().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof SnapferryError, `not a SnapferryError: ${String(err)}`);
    assert.equal(err.code, 'store_unavailable');
    assert.equal(err.retryable, true);
    assert.equal(statusOf(err), 503);
    assert.match(err.message, new RegExp(`127\\.0\\.0\\.1:${port}.*could not be reached`));
  }
});

test('wrong keys give store_forbidden: not retryable, and the message says to check the store keys', rootOnly, async () => {
  const b = await s3.bucket();
  const store = s3ObjectStore({ endpoint: b.server.endpoint, bucket: b.name, prefix: 'p', accessKeyId: b.server.accessKeyId, secretAccessKey: 'wrong-secret' });
  const stranger = s3ObjectStore({ endpoint: b.server.endpoint, bucket: b.name, prefix: 'p', accessKeyId: 'AKNOBODY', secretAccessKey: 'x' });
  for (const call of [() => store.get('k'), () => store.putIfAbsent('k', Buffer.from('x')), () => store.swap('k', Buffer.from('x'), 'e'), () => keys(store, ''), () => stranger.get('k')]) {
    const err = await call().then(() => null, (e: unknown) => e);
    assert.ok(err instanceof SnapferryError, `not a SnapferryError: ${String(err)}`);
    assert.equal(err.code, 'store_forbidden');
    assert.equal(err.retryable, false);
    assert.match(err.message, /check the store's accessKeyId and secretAccessKey/);
    assert.doesNotMatch(err.message, /wrong-secret/, 'the secret must not be in the message');
  }
});

test('a bucket that does not exist is its own error, not "absent"', rootOnly, async () => {
  const b = await s3.bucket();
  const store = s3ObjectStore({ endpoint: b.server.endpoint, bucket: 'no-such-bucket', prefix: 'p', accessKeyId: b.server.accessKeyId, secretAccessKey: b.server.secretAccessKey });
  await assert.rejects(store.get('k'), { code: 'store_bucket_missing', retryable: false });
  await assert.rejects(store.putIfAbsent('k', Buffer.from('x')), { code: 'store_bucket_missing' });
});
