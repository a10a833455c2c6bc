// The archive's shared JSON objects over a real RGW: read-modify-write by compare-and-swap loses no instance's
// change under a race, and format.json is created once and guards the prefix against another format.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { rootOnly } from '../fixtures/btrfs.ts';
import { SnapferryError } from '../../core/errors.ts';
import { statusOf } from '../../server/http-errors.ts';
import { parseJson, readJson, updateJson } from '../../server/archive/json-object.ts';
import { VolumeCatalog } from '../../server/archive/volume-catalog.ts';
import { ensureFormat, FORMAT_KEY } from '../../server/archive/format.ts';
import { sharedS3 } from './store-fixture.ts';

const s3 = sharedS3();
const Catalog = z.object({ entries: z.record(z.string(), z.number()) });
type Catalog = z.infer<typeof Catalog>;
const withEntry = (name: string, n: number) => (old: Catalog | null): Catalog => ({ entries: { ...old?.entries, [name]: n } });

test('20 racing catalog updates from 20 store instances lose no entry', rootOnly, async () => {
  const b = await s3.bucket();
  const key = 'catalog/laptop/home.json';
  let calls = 0;
  const results = await Promise.all(
    Array.from({ length: 20 }, (_, i) => updateJson(b.store(), key, Catalog, (old) => {
      calls++;
      return withEntry(`snap-${i}`, i)(old);
    })),
  );
  const final = await readJson(b.store(), key, Catalog);
  assert.ok(final);
  assert.deepEqual(Object.keys(final.value.entries).sort(), Array.from({ length: 20 }, (_, i) => `snap-${i}`).sort());
  // Each racer's own result contains its own entry; the races really happened (changes were applied again).
  results.forEach((r, i) => assert.equal(r.value.entries[`snap-${i}`], i));
  assert.ok(calls > 20, `only ${calls} change calls: the racers did not race`);
});

test('an update that changes nothing writes nothing, and a corrupt object is an error, not an empty catalog', rootOnly, async () => {
  const b = await s3.bucket();
  const store = b.store();
  const first = await updateJson(store, 'c.json', Catalog, withEntry('a', 1));
  const same = await updateJson(store, 'c.json', Catalog, (old) => old!);
  assert.equal(same.etag, first.etag);
  await store.putIfAbsent('bad.json', Buffer.from('{"entries": 3}'));
  const err = await updateJson(store, 'bad.json', Catalog, withEntry('a', 1)).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.code, 'archive_object_corrupt');
  assert.match(err.message, /bad\.json does not have the expected shape: entries/);
  assert.equal((await store.get('bad.json'))?.body.toString(), '{"entries": 3}', 'the corrupt object was overwritten');
});

test('format.json is created once; the same version passes, another version or program is refused clearly', rootOnly, async () => {
  const b = await s3.bucket();
  await Promise.all(Array.from({ length: 5 }, () => ensureFormat(b.store(), 's3://bucket/archive')));
  const stored = await b.store().get(FORMAT_KEY);
  assert.deepEqual(JSON.parse(stored!.body.toString()), { snapferry: 'archive', version: 1 });
  await ensureFormat(b.store(), 's3://bucket/archive');

  const future = b.store('future');
  await future.putIfAbsent(FORMAT_KEY, Buffer.from('{"snapferry":"archive","version":2}'));
  const err = await ensureFormat(future, 's3://bucket/future').then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.code, 'archive_format_unsupported');
  assert.equal(err.retryable, false);
  assert.equal(statusOf(err), 500);
  assert.match(err.message, /s3:\/\/bucket\/future holds a snapferry archive of format version 2, and this snapferry reads version 1/);
  assert.equal((await future.get(FORMAT_KEY))?.body.toString(), '{"snapferry":"archive","version":2}', 'the other format.json was replaced');

  const other = b.store('other');
  await other.putIfAbsent(FORMAT_KEY, Buffer.from('not json'));
  await assert.rejects(ensureFormat(other, 's3://bucket/other'), { code: 'archive_format_unsupported', message: /not a snapferry archive's/ });
});

test('an object with fields a newer snapferry added is refused as an upgrade to make, not as damage to remove', () => {
  const entry = {
    name: 's1', uuid: 'u1', parentUuid: null, transferId: 't1', chunkSize: 4194304, rawBytes: 1, wireBytes: 1, storedAt: '2026-12-06T00:00:00.000Z',
    createdAt: null, takenAt: null, manifest: 'manifests/t1.json',
  };
  const newer = Buffer.from(JSON.stringify({ version: 1, streams: [{ ...entry, pinnedBy: 'x' }], shards: 2 }));
  const err = (() => { try { parseJson('catalog/c/v.json', newer, VolumeCatalog); return null; } catch (e) { return e; } })();
  assert.ok(err instanceof SnapferryError);
  assert.equal(err.code, 'archive_format_unsupported');
  assert.equal(statusOf(err), 500);
  assert.match(err.message, /catalog\/c\/v\.json holds streams\.0\.pinnedBy, shards, which snapferry \S+ does not know: a newer snapferry wrote it .*upgrade this one/);
  assert.doesNotMatch(err.message, /remove the archive/);
  // A known field with a wrong value is still damage, whatever else the object holds.
  const damaged = Buffer.from(JSON.stringify({ version: 1, streams: [{ ...entry, rawBytes: -1, pinnedBy: 'x' }] }));
  assert.throws(() => parseJson('catalog/c/v.json', damaged, VolumeCatalog), { code: 'archive_object_corrupt' });
  assert.deepEqual(parseJson('catalog/c/v.json', Buffer.from(JSON.stringify({ version: 1, streams: [entry] })), VolumeCatalog).streams[0]?.name, 's1');
});
