// The archive's upkeep against a real RGW (test/fixtures/s3.ts, one per file, a bucket per test): retention deletes
// whole chains and every kept snapshot still restores from what is left; a pass killed between its steps is finished
// by the next pass of any instance; two passes at once leave one consistent catalog; the sweep deletes tombstones
// and folders without state, and leaves an upload whose lease is live.
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { META, WIRE_FORMAT } from '../../core/protocol.ts';
import { SnapferryError } from '../../core/errors.ts';
import type { SafeName, Uuid } from '../../core/names.ts';
import { silentLogger } from '../../server/log.ts';
import { statusOf } from '../../server/http-errors.ts';
import { ArchiveService } from '../../server/archive/archive-service.ts';
import { ArchiveUpkeep } from '../../server/archive/archive-upkeep.ts';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { pruneArchiveVolume } from '../../server/archive/archive-retention.ts';
import { sweepUploads } from '../../server/archive/upload-sweep.ts';
import { planArchiveRetention } from '../../server/archive/chains.ts';
import { acquireLease } from '../../server/archive/lease.ts';
import { updateJson } from '../../server/archive/json-object.ts';
import { readManifest } from '../../server/archive/manifest.ts';
import { asArchived, catalogKey, readCatalog, recordStream, VolumeCatalog, type CatalogEntry } from '../../server/archive/volume-catalog.ts';
import { stateKey, uploadFolder } from '../../server/archive/upload-state.ts';
import type { ObjectStore } from '../../server/archive/object-store.ts';
import { rootOnly } from '../fixtures/btrfs.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';
import { sharedS3, type TestBucket } from './store-fixture.ts';

const s3 = sharedS3();
const CHUNK = 64 * 1024;
const CLIENT = 'laptop' as SafeName;
const VOLUME = 'home' as SafeName;
const DAY = 86_400_000;
const T0 = Date.parse('2026-11-01T00:00:00.000Z');
const log = silentLogger();

let instances = 0;
/** An instance on BUCKET (its own S3 client and holder), closed after the test: its retention after a push ends first. */
function instance(t: TestContext, bucket: TestBucket, options: { expireAfterMs?: number } = {}): ArchiveService {
  const svc = new ArchiveService({ objects: bucket.store(), where: bucket.name, holder: `instance-${++instances}`, log, upkeepEveryMs: 0, ...options });
  t.after(() => svc.close());
  return svc;
}

interface Pushed {
  name: string;
  uuid: string;
  id: string;
  wire: Buffer;
}

const newId = (): string => crypto.randomBytes(16).toString('hex');

/** Creates an upload of SNAPSHOT (taken DAYS after T0) on PARENT, and sends `parts` of its stream as separate requests. */
async function begin(svc: ArchiveService, name: string, days: number, parent: Pushed | null, seed: number): Promise<Pushed & { metadata: Record<string, string> }> {
  const { wire } = await encode(mixedBytes(3 * CHUNK, CHUNK, seed), { chunkSize: CHUNK, level: 1 });
  const uuid = crypto.randomUUID();
  const id = newId();
  const metadata: Record<string, string> = {
    [META.volume]: VOLUME, [META.snapshot]: name, [META.uuid]: uuid, [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK),
    [META.takenAt]: new Date(T0 + days * DAY).toISOString(),
    ...(parent ? { [META.parentUuid]: parent.uuid } : {}),
  };
  await svc.beginTransfer(CLIENT, id, metadata);
  await svc.uploadStore().create({ id, metadata, creationDate: new Date().toISOString() });
  return { name, uuid, id, wire, metadata };
}

async function send(svc: ArchiveService, id: string, offset: number, bytes: Buffer): Promise<number> {
  const body = new PassThrough();
  const writing = svc.uploadStore().write(id, body, offset);
  body.end(bytes);
  return writing;
}

/** A whole stream, sent in two requests (so stored as two segments at least). */
async function push(svc: ArchiveService, name: string, days: number, parent: Pushed | null, seed = days + 1): Promise<Pushed> {
  const p = await begin(svc, name, days, parent, seed);
  const half = Math.floor(p.wire.length / 2);
  // Cut at a frame's end: the store keeps whole frames only, so send the first request up to one.
  const first = await send(svc, p.id, 0, p.wire.subarray(0, half)).catch(() => 0);
  const at = (await svc.uploadStore().get(p.id)).offset;
  assert.ok(first === 0 || first === at);
  assert.equal(await send(svc, p.id, at, p.wire.subarray(at)), p.wire.length);
  return p;
}

async function keys(objects: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of objects.list(prefix)) out.push(o.key);
  return out.sort();
}

async function restored(svc: ArchiveService, s: Pushed, parent: Pushed | null): Promise<Buffer> {
  const r = await svc.restoreStream({
    client: CLIENT, volume: VOLUME, snapshot: s.name as SafeName, parentUuid: (parent?.uuid ?? null) as Uuid | null, chunkSize: CHUNK, fromFrame: 0, chain: null, skip: 0,
  });
  const parts: Buffer[] = [];
  for await (const b of r.body) parts.push(b as Buffer);
  return Buffer.concat(parts);
}

const failure = (p: Promise<unknown>): Promise<SnapferryError> =>
  p.then(() => assert.fail('expected a refusal'), (err: unknown) => {
    assert.ok(err instanceof SnapferryError, `not a SnapferryError: ${String(err)}`);
    return err;
  });

/** Three chains: a1 <- a2, b1 <- b2, c1 (newest). */
async function threeChains(svc: ArchiveService): Promise<Record<'a1' | 'a2' | 'b1' | 'b2' | 'c1', Pushed>> {
  const a1 = await push(svc, 'a1', 0, null);
  const a2 = await push(svc, 'a2', 1, a1);
  const b1 = await push(svc, 'b1', 2, null);
  const b2 = await push(svc, 'b2', 3, b1);
  const c1 = await push(svc, 'c1', 4, null);
  return { a1, a2, b1, b2, c1 };
}

/** Sets `retention` on the entries named, as an instance killed after that swap leaves them. */
async function leaveMarked(objects: ObjectStore, names: string[], state: 'marked' | 'deleting'): Promise<void> {
  await updateJson(objects, catalogKey(CLIENT, VOLUME), VolumeCatalog, (old) => ({
    ...old!, streams: old!.streams.map((s): CatalogEntry => (names.includes(s.name) ? { ...s, retention: { state, at: new Date().toISOString() } } : s)),
  }));
}

test('retention deletes exactly the chains the plan gives up, and every kept snapshot restores from what is left', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const { a1, a2, b1, b2, c1 } = await threeChains(svc);
  const now = new Date(T0 + 10 * DAY);
  // last: 2 keeps c1 and b2; b2 needs b1; nothing needs a1 and a2.
  const plan = planArchiveRetention(asArchived(await readCatalog(objects, CLIENT, VOLUME)), { last: 2 }, now);
  assert.deepEqual(plan.deleteChains.map((c) => c.members.map((m) => m.name)), [['a1', 'a2']]);

  const deleted = await pruneArchiveVolume(objects, { client: CLIENT, volume: VOLUME }, { last: 2 }, { log, now });
  assert.deepEqual(deleted.sort(), ['a1', 'a2']);
  assert.deepEqual((await readCatalog(objects, CLIENT, VOLUME)).map((s) => s.name), ['b1', 'b2', 'c1']);
  assert.deepEqual((await svc.snapshots(CLIENT, VOLUME)).snapshots.map((s) => s.name), ['b1', 'b2', 'c1']);
  // Nothing of a1 and a2 is left: no manifest, no upload folder (segments, transfer.json, state.json, lease.json).
  for (const s of [a1, a2]) {
    assert.deepEqual(await keys(objects, `streams/${CLIENT}/${VOLUME}/${s.uuid}/`), [], `${s.name}'s manifest`);
    assert.deepEqual(await keys(objects, uploadFolder(s.id)), [], `${s.name}'s upload folder`);
  }
  // Every kept snapshot: its manifest read back names segments that are all there, and it restores byte for byte.
  for (const [s, parent] of [[b1, null], [b2, b1], [c1, null]] as const) {
    const manifest = await readManifest(objects, `streams/${CLIENT}/${VOLUME}/${s.uuid}/manifest.json`);
    assert.ok(manifest, `${s.name}'s manifest`);
    assert.ok(manifest.segments.length >= 2, `${s.name}: ${manifest.segments.length} segments`);
    for (const seg of manifest.segments) assert.ok(await objects.get(seg.key), `${s.name}'s ${seg.key}`);
    assert.deepEqual(await restored(svc, s, parent), s.wire, `${s.name} restores identical`);
  }
  // A deleted snapshot is refused with a reason, and cannot be a parent.
  const gone = await failure(restored(svc, a2, a1));
  assert.equal(gone.code, 'snapshot_retired');
  assert.equal((await failure(begin(svc, 'a3', 5, a2, 9))).code, 'parent_missing');
  // Again: nothing more to delete.
  assert.deepEqual(await pruneArchiveVolume(objects, { client: CLIENT, volume: VOLUME }, { last: 2 }, { log, now }), []);
});

test('a pass killed after its mark, or mid-deletion, is finished by the next pass of another instance; meanwhile nothing offers or restores the chain', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const { a1, a2, b1, b2, c1 } = await threeChains(svc);
  // Killed mid-deletion: a's chain `deleting`, a1's manifest and a2's transfer.json already gone.
  await leaveMarked(objects, ['a1', 'a2'], 'deleting');
  await objects.delete(`streams/${CLIENT}/${VOLUME}/${a1.uuid}/manifest.json`);
  await objects.delete(`${uploadFolder(a2.id)}transfer.json`);
  // Killed after its mark: b's chain `marked`.
  await leaveMarked(objects, ['b1', 'b2'], 'marked');

  assert.deepEqual((await svc.snapshots(CLIENT, VOLUME)).snapshots.map((s) => s.name), ['c1'], 'marked and deleting streams are not offered');
  for (const [s, parent] of [[a2, a1], [b2, b1]] as const) {
    const refused = await failure(restored(svc, s, parent));
    assert.equal(refused.code, 'snapshot_retired');
    assert.equal(statusOf(refused), 410);
    assert.match(refused.message, /retention policy/);
  }
  assert.equal((await failure(begin(svc, 'b3', 5, b2, 9))).code, 'parent_missing');

  const entries = await readCatalog(objects, CLIENT, VOLUME);
  // Another instance, with no policy at all, finishes both.
  const other = new ArchiveUpkeep({ objects: bucket.store(), log, retention: () => ({}), keepEndedMs: DAY });
  const { deleted } = await other.run();
  assert.deepEqual(deleted.sort(), ['a1', 'a2', 'b1', 'b2'].map((n) => `${CLIENT}/${VOLUME}/${n}`));
  const catalog = await readCatalog(objects, CLIENT, VOLUME);
  assert.deepEqual(catalog.map((s) => s.name), ['c1']);
  for (const s of [a1, a2, b1, b2]) {
    assert.deepEqual(await keys(objects, `streams/${CLIENT}/${VOLUME}/${s.uuid}/`), [], `${s.name}'s manifest`);
    assert.deepEqual(await keys(objects, uploadFolder(s.id)), [], `${s.name}'s upload folder`);
  }
  assert.deepEqual(await restored(svc, c1, null), c1.wire);
  // An instance that read a2's upload complete before it went, and records it now (ArchiveLifecycle.finish), records
  // nothing: its segments are gone.
  const late = entries.find((s) => s.name === 'a2')!;
  const { retention: _marked, ...asRecorded } = late;
  assert.equal(await recordStream(objects, CLIENT, VOLUME, asRecorded), false);
  assert.deepEqual((await readCatalog(objects, CLIENT, VOLUME)).map((s) => s.name), ['c1']);
});

test('a marked chain an upload in progress builds on goes back to live; a new upload on a marked parent is refused', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const a1 = await push(svc, 'a1', 0, null);
  const a2 = await push(svc, 'a2', 1, a1);
  const b1 = await push(svc, 'b1', 2, null);
  // An upload on a2, begun before the mark (its transfer.json written), still uploading.
  const a3 = await begin(svc, 'a3', 3, a2, 7);
  await leaveMarked(objects, ['a1', 'a2'], 'marked');
  assert.equal((await failure(begin(svc, 'a4', 4, a2, 8))).code, 'parent_missing', 'a new upload on a marked parent');

  await pruneArchiveVolume(objects, { client: CLIENT, volume: VOLUME }, {}, { log });
  const catalog = await readCatalog(objects, CLIENT, VOLUME);
  assert.deepEqual(catalog.map((s) => [s.name, s.retention?.state ?? 'live']), [['a1', 'live'], ['a2', 'live'], ['b1', 'live']]);
  // The upload finishes on its parent, and its chain restores.
  assert.equal(await send(svc, a3.id, 0, a3.wire), a3.wire.length);
  assert.deepEqual(await restored(svc, a3, a2), a3.wire);
  // Now a3 is the newest, taken and stored: keeping one, the chain it needs stays and b1's goes.
  assert.deepEqual(await pruneArchiveVolume(objects, { client: CLIENT, volume: VOLUME }, { last: 1 }, { log }), [b1.name]);
  assert.deepEqual((await readCatalog(objects, CLIENT, VOLUME)).map((s) => s.name).sort(), ['a1', 'a2', 'a3']);
});

test('two instances running retention at once, while a stream is stored mid-deletion, leave one consistent catalog', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const { c1 } = await threeChains(svc);
  const d1 = await begin(svc, 'd1', 6, null, 42);
  // The first instance's first delete waits for d1 to be stored and recorded: a stream recorded between its reading
  // the streams to delete and its swap that drops them, every time (the second instance races as it may).
  const first = bucket.store();
  let recorded: Promise<number> | null = null;
  const stalled: ObjectStore = { ...first, delete: async (key) => {
    recorded ??= send(svc, d1.id, 0, d1.wire);
    await recorded;
    return first.delete(key);
  } };
  const upkeeps = [stalled, bucket.store()].map((o) => new ArchiveUpkeep({ objects: o, log, retention: () => ({ last: 1 }), keepEndedMs: DAY }));
  const [x, y] = await Promise.all([upkeeps[0]!.run(), upkeeps[1]!.run()]);
  assert.ok(recorded, 'the first instance deleted something');
  // One more pass, now that d1 is stored: it is the newest, so only its chain stays.
  const z = await upkeeps[0]!.run();
  const all = [...x.deleted, ...y.deleted, ...z.deleted].map((n) => n.split('/').at(-1)!);
  const catalog = await readCatalog(objects, CLIENT, VOLUME);
  assert.deepEqual(catalog.map((s) => s.name), ['d1'], 'd1 recorded, not lost to a racing swap');
  assert.deepEqual([...new Set(all)].sort(), ['a1', 'a2', 'b1', 'b2', 'c1']);
  const raw = (await objects.get(catalogKey(CLIENT, VOLUME)))!;
  const parsed = VolumeCatalog.parse(JSON.parse(raw.body.toString()));
  assert.deepEqual(parsed.retired?.map((r) => r.uuid).length, 5, 'each retired upload remembered once');
  // Only d1's objects are left under streams/, and only d1's upload folder under uploads/.
  assert.deepEqual(await keys(objects, 'streams/'), [`streams/${CLIENT}/${VOLUME}/${d1.uuid}/manifest.json`]);
  assert.deepEqual(new Set((await keys(objects, 'uploads/')).map((k) => k.split('/')[1])), new Set([d1.id]));
  assert.deepEqual(await restored(svc, d1, null), d1.wire);
  void c1;
});

test('the sweep: an expired upload leaves nothing, a live-leased one is untouched, tombstones go after the keep period, folders without state too', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket, { expireAfterMs: 60_000 });
  const objects = bucket.store();
  const started = async (name: string, seed: number) => {
    const p = await begin(svc, name, 0, null, seed);
    // Half the stream, stored as segments, then nothing more: an abandoned upload.
    await send(svc, p.id, 0, p.wire.subarray(0, Math.floor(p.wire.length / 2))).catch(() => undefined);
    const got = (await objects.get(stateKey(p.id)))!;
    const state = { ...JSON.parse(got.body.toString()), touchedAt: new Date(Date.now() - 3_600_000).toISOString() };
    assert.ok(await objects.swap(stateKey(p.id), Buffer.from(JSON.stringify(state)), got.etag));
    return p;
  };
  const idle = await started('idle', 1);
  const leased = await started('leased', 2);
  const held = await acquireLease(bucket.store(), leased.id, 'another-instance', { leaseMs: 120_000 });
  // A folder with only transfer.json (an instance killed before state.json).
  const orphan = newId();
  await svc.beginTransfer(CLIENT, orphan, { ...idle.metadata, [META.uuid]: crypto.randomUUID() });
  const before = await keys(objects, uploadFolder(leased.id));
  assert.ok(before.some((k) => k.includes('/seg-')), 'the leased upload holds segments');

  assert.equal(await svc.uploadStore().expire(), 1, 'only the idle upload whose lease is free expires');
  // Within the keep period: the tombstone stays (a client that comes back is told it expired), its segments are gone.
  const kept = await sweepUploads({ objects, log, keepEndedMs: DAY });
  assert.deepEqual(await keys(objects, uploadFolder(idle.id)), [`${uploadFolder(idle.id)}lease.json`, `${uploadFolder(idle.id)}state.json`, `${uploadFolder(idle.id)}transfer.json`]);
  assert.deepEqual(kept.folders, 0);
  assert.equal((await failure(svc.uploadStore().get(idle.id))).code, 'upload_expired');

  // Past it (a sweep a day later): the tombstone's folder and the orphan go whole; the leased upload stays as it was.
  const later = await sweepUploads({ objects, log, keepEndedMs: DAY, now: () => Date.now() + 2 * DAY });
  assert.equal(later.folders, 2);
  assert.deepEqual(await keys(objects, uploadFolder(idle.id)), []);
  assert.deepEqual(await keys(objects, uploadFolder(orphan)), []);
  assert.deepEqual(await keys(objects, uploadFolder(leased.id)), before);
  await held.release();

  // A tombstone whose lease is live stays until the lease ends.
  await svc.uploadStore().expire();
  const relocked = await acquireLease(bucket.store(), leased.id, 'another-instance', { leaseMs: 120_000 });
  assert.equal((await sweepUploads({ objects, log, keepEndedMs: DAY, now: () => Date.now() + 2 * DAY })).folders, 0);
  assert.ok((await keys(objects, uploadFolder(leased.id))).includes(stateKey(leased.id)));
  await relocked.release();
  assert.equal((await sweepUploads({ objects, log, keepEndedMs: DAY, now: () => Date.now() + 2 * DAY })).folders, 1);
  assert.deepEqual(await keys(objects, 'uploads/'), []);
});

test('a restore that opened a stream before its chain was deleted breaks off with an error, never ends as if whole; its retry is refused', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const b1 = await push(svc, 'b1', 0, null);
  await push(svc, 'c1', 1, null);
  const opened = await svc.restoreStream({
    client: CLIENT, volume: VOLUME, snapshot: b1.name as SafeName, parentUuid: null, chunkSize: CHUNK, fromFrame: 0, chain: null, skip: 0,
  });
  assert.deepEqual(await pruneArchiveVolume(objects, { client: CLIENT, volume: VOLUME }, { last: 1 }, { log }), ['b1']);
  // The first segment was read when the restore opened; the next is gone.
  const parts: Buffer[] = [];
  const read = (async () => {
    for await (const b of opened.body) parts.push(b as Buffer);
  })();
  const err = await failure(read);
  assert.equal(err.code, 'store_object_missing');
  assert.ok(Buffer.concat(parts).length < b1.wire.length, 'less than the stream went out');
  const retry = await failure(svc.restoreStream({
    client: CLIENT, volume: VOLUME, snapshot: b1.name as SafeName, parentUuid: null, chunkSize: CHUNK, fromFrame: 1, chain: crypto.randomBytes(32), skip: 0,
  }));
  assert.equal(retry.code, 'snapshot_retired');
  assert.equal(statusOf(retry), 410);
});

test('a started archive server runs the upkeep: at start it finishes a chain left deleting, and after a stored stream it applies the policy', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const a1 = await push(svc, 'a1', 0, null);
  const b1 = await push(svc, 'b1', 1, null);
  await leaveMarked(objects, ['a1'], 'deleting');
  const { server } = bucket;
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log, retention: () => ({ last: 1 }), upkeepEveryMs: 3_600_000,
    store: { endpoint: server.endpoint, bucket: bucket.name, prefix: 'archive', region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
  t.after(() => running.close());
  const names = async () => (await readCatalog(objects, CLIENT, VOLUME)).map((s) => s.name);
  const until = async (want: string[]) => {
    for (let end = Date.now() + 20_000; Date.now() < end; await sleep(200)) if (JSON.stringify(await names()) === JSON.stringify(want)) return;
    assert.deepEqual(await names(), want);
  };
  await until(['b1']);
  assert.deepEqual(await keys(objects, uploadFolder(a1.id)), []);
  // A stream stored through the server: b1 is no longer the newest, and its chain goes.
  const c1 = await push(running.service, 'c1', 2, null);
  await until(['c1']);
  assert.deepEqual(await keys(objects, uploadFolder(b1.id)), []);
  assert.deepEqual(await restored(running.service, c1, null), c1.wire);
});

test('always kept, whatever the policy: the newest stored snapshot (the next parent) and the parent of an upload in progress', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const svc = instance(t, bucket);
  const objects = bucket.store();
  const a1 = await push(svc, 'a1', 0, null);
  await push(svc, 'b1', 5, null);
  // Stored last, though taken before b1 (a backlog pushed late).
  await push(svc, 'c1', 1, null);
  await begin(svc, 'a2', 6, a1, 9);
  const plan = planArchiveRetention(asArchived(await readCatalog(objects, CLIENT, VOLUME)), { last: 1 }, new Date());
  assert.deepEqual(plan.deleteChains.map((c) => c.full.name).sort(), ['a1', 'c1'], 'the policy alone gives up a1 and c1');
  assert.deepEqual(await pruneArchiveVolume(objects, { client: CLIENT, volume: VOLUME }, { last: 1 }, { log }), []);
  assert.deepEqual((await readCatalog(objects, CLIENT, VOLUME)).map((s) => s.name), ['a1', 'b1', 'c1']);
});
