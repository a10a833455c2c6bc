// Archive mode keeps a btrfs server's promises to and about each client (docs/archive.md, "Limits, status and
// metrics"): the per-client limits (open uploads, creation rate, byte quota) hold across instances that share one
// RGW bucket, with the codes and statuses a btrfs server answers; GET /v1/status and /metrics count the bucket's
// transfers, the same through every instance; and a second push of one upload through the instance that is
// serving the first one's request is refused transfer_locked (409, Retry-After), while the first push itself is
// admitted at once after its own cut. Real servers over real sockets on a real RGW; frames made by the real encoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import type { UploadLimits } from '../../server/upload-limits.ts';
import { META, SESSION_HEADER, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { SnapferryError } from '../../core/errors.ts';
import { sharedS3, type TestBucket } from '../archive/store-fixture.ts';
import { encode, seededBytes } from '../wire/frame-helpers.ts';
import { archiveUploads } from '../archive/segment-fixture.ts';
import { admitUpload, clientUploadsKey, failedByCode, PENDING_MS, settle } from '../../server/archive/client-uploads.ts';
import { uploadLimits } from '../../server/upload-limits.ts';
import type { SafeName } from '../../core/names.ts';

const s3 = sharedS3();
const CHUNK = 64 * 1024;
let uuids = 0;

async function archiveServer(t: { after(fn: () => unknown): void }, bucket: TestBucket, limits: Partial<UploadLimits>) {
  const { server } = bucket;
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), limits,
    store: { endpoint: server.endpoint, bucket: bucket.name, prefix: 'limits', region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
  t.after(() => running.close());
  return running.url;
}

interface Answer {
  status: number;
  code: string | undefined;
  retryable: boolean | undefined;
  retryAfter: string | null;
  location: string | null;
  offset: string | null;
}

async function answer(res: Response): Promise<Answer> {
  const body = (await res.json().catch(() => null)) as { error?: { code?: string; retryable?: boolean } } | null;
  return {
    status: res.status, code: body?.error?.code, retryable: body?.error?.retryable, retryAfter: res.headers.get('retry-after'),
    location: res.headers.get('location'), offset: res.headers.get('upload-offset'),
  };
}

/** A tus creation request for a full snapshot of its own volume and UUID, as a push makes it. */
async function create(url: string, length?: number): Promise<Answer & { id: string | undefined }> {
  const n = ++uuids;
  const meta: Record<string, string> = {
    [META.volume]: `v${n}`, [META.snapshot]: 's1', [META.uuid]: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`,
    [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK),
  };
  const res = await fetch(`${url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0', ...(length === undefined ? { 'Upload-Defer-Length': '1' } : { 'Upload-Length': String(length) }),
      'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(','),
    },
  });
  const a = await answer(res);
  return { ...a, id: a.location?.split('/').at(-1) };
}

function patch(url: string, id: string, offset: number, body: Buffer | ReadableStream<Uint8Array>, session = 'push-1', signal?: AbortSignal): Promise<Response> {
  return fetch(`${url}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH', signal, duplex: 'half',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(offset), 'Content-Type': 'application/offset+octet-stream', [SESSION_HEADER]: session },
    body,
  } as RequestInit);
}

async function status(url: string): Promise<Record<string, number>> {
  return ((await (await fetch(`${url}/v1/status`)).json()) as { transfers: Record<string, number> }).transfers;
}

/** The value of `snapferry_transfers{client="default",state=STATE}` in a scrape of /metrics. */
async function metricTransfers(url: string, state: string): Promise<number | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const m = new RegExp(`^snapferry_transfers\\{client="default",state="${state}"\\} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** A framed stream of `frames` data frames of random bytes (each about CHUNK on the wire), and where each frame ends. */
async function framed(frames: number, seed: number): Promise<{ wire: Buffer; ends: number[] }> {
  const { wire, frames: info } = await encode(seededBytes(frames * CHUNK, seed), { chunkSize: CHUNK, level: 1 });
  return { wire, ends: info.map((f) => f.wireOffset + f.wireLength) };
}

test('open uploads and the creation rate are counted in the bucket: two instances share one client\'s limits; status and /metrics count the same through either', async (t) => {
  const bucket = await s3.bucket();
  const limits = { maxOpenUploads: 2, creationBurst: 4, creationsPerMinute: 1 };
  const a = await archiveServer(t, bucket, limits);
  const b = await archiveServer(t, bucket, limits);

  const u1 = await create(a);
  const u2 = await create(b);
  assert.deepEqual([u1.status, u2.status], [201, 201]);
  // A third open upload, through the instance that made only one: the bucket counts both.
  const third = await create(a);
  assert.deepEqual([third.status, third.code, third.retryable], [429, 'too_many_uploads', true]);
  assert.deepEqual(await status(b), { uploading: 2 });
  assert.equal(await metricTransfers(a, 'uploading'), 2);

  // An abort through one instance frees the slot for the other, and both count it.
  const aborted = await fetch(`${b}/v1/transfers/${u1.id}/abort`, { method: 'POST' });
  assert.equal(aborted.status, 200);
  assert.deepEqual(await status(a), { uploading: 1, aborted: 1 });
  assert.deepEqual([await metricTransfers(b, 'uploading'), await metricTransfers(b, 'aborted')], [1, 1]);
  const u3 = await create(a);
  assert.equal(u3.status, 201);

  // The rate: a burst of 4 across both instances (each made 2), then one a minute.
  assert.equal((await fetch(`${a}/v1/transfers/${u2.id}/abort`, { method: 'POST' })).status, 200);
  const u4 = await create(b);
  assert.equal(u4.status, 201);
  assert.equal((await fetch(`${b}/v1/transfers/${u4.id}/abort`, { method: 'POST' })).status, 200);
  const fifth = await create(a);
  assert.deepEqual([fifth.status, fifth.code, fifth.retryable], [429, 'too_many_creations', true]);
  assert.ok(Number(fifth.retryAfter) >= 1 && Number(fifth.retryAfter) <= 60, `Retry-After: ${fifth.retryAfter}`);
  assert.deepEqual(await status(b), { uploading: 1, aborted: 3 });
});

test('the byte quota counts what the bucket holds of the client\'s open uploads: a declared length over it, a write that passes it beside another upload, and one that could never fit (413 quota_exceeded, kept)', async (t) => {
  const bucket = await s3.bucket();
  const { wire, ends } = await framed(6, 11);
  const quota = ends[3]! + 1000;
  const url = await archiveServer(t, bucket, { quotaBytes: quota });

  // Declared over the quota at creation: refused before anything is stored, and final (it could never fit).
  const declared = await create(url, quota + 1);
  assert.deepEqual([declared.status, declared.code, declared.retryable], [413, 'quota_exceeded', false]);

  // One upload holds 3 frames in the bucket; a second one may hold the rest of the quota and no more.
  const first = await create(url);
  assert.equal(first.status, 201);
  assert.equal((await answer(await patch(url, first.id!, 0, wire.subarray(0, ends[2]!)))).offset, String(ends[2]));
  const second = await create(url);
  const over = await answer(await patch(url, second.id!, 0, wire.subarray(0, ends[2]!)));
  assert.deepEqual([over.status, over.code, over.retryable], [413, 'quota_exceeded', true]);
  // Its frames that fitted are kept: the upload goes on once the other's bytes are gone.
  const head = await fetch(`${url}${UPLOADS_PATH}/${second.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const kept = Number(head.headers.get('upload-offset'));
  assert.ok(kept < ends[2]! && kept <= quota - ends[2]!, `the second upload holds ${kept} bytes`);
  assert.equal((await fetch(`${url}/v1/transfers/${first.id}/abort`, { method: 'POST' })).status, 200);
  assert.equal((await answer(await patch(url, second.id!, kept, wire.subarray(kept, ends[2]!)))).offset, String(ends[2]));

  // Alone over the quota: refused for good (retrying cannot help), but the upload keeps what it holds, to be resumed
  // once the quota is raised; it counts as an open upload until it is aborted or expires.
  const alone = await answer(await patch(url, second.id!, ends[2]!, wire.subarray(ends[2]!)));
  assert.deepEqual([alone.status, alone.code, alone.retryable], [413, 'quota_exceeded', false]);
  await sleep(500);
  assert.deepEqual(await status(url), { aborted: 1, uploading: 1 });
  const held = await fetch(`${url}${UPLOADS_PATH}/${second.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.ok(Number(held.headers.get('upload-offset')) >= ends[2]!, `the refused upload holds ${held.headers.get('upload-offset')} bytes`);
  const listed = ((await (await fetch(`${url}/v1/transfers/${second.id}`)).json()) as { state: string; error: { code: string } | null });
  assert.deepEqual([listed.state, listed.error], ['uploading', null]);
  // Aborted, it holds nothing of the client's.
  assert.equal((await fetch(`${url}/v1/transfers/${second.id}/abort`, { method: 'POST' })).status, 200);
  assert.deepEqual(await status(url), { aborted: 2 });
  assert.equal(await metricTransfers(url, 'aborted'), 2);
});

test('a second push of one upload through the instance serving the first push\'s request: 409 transfer_locked with Retry-After; the first push after its own cut is admitted at once', async (t) => {
  const bucket = await s3.bucket();
  const url = await archiveServer(t, bucket, {});
  const { wire, ends } = await framed(4, 23);
  const upload = await create(url);
  assert.equal(upload.status, 201);
  const id = upload.id!;

  // The first push's request: one frame sent, then the line goes quiet (the request is live on the server).
  const cut = new AbortController();
  const first = patch(url, id, 0, new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(wire.subarray(0, ends[0]! + 10)) }), 'push-1', cut.signal)
    .catch((err: unknown) => err);
  for (let end = Date.now() + 10_000; Date.now() < end; await sleep(50)) {
    const t1 = (await (await fetch(`${url}/v1/transfers/${id}`)).json()) as { wireArrived: number };
    if (t1.wireArrived > ends[0]!) break;
  }

  const second = await answer(await patch(url, id, 0, wire.subarray(0, ends[1]!), 'push-2'));
  assert.deepEqual([second.status, second.code, second.retryable], [409, 'transfer_locked', true]);
  assert.ok(Number(second.retryAfter) >= 1, `Retry-After: ${second.retryAfter}`);

  // The first push's line is cut; its next requests come at once, while the server may still be ending the cut one:
  // none of them is refused as another push's. (One may meet offset_mismatch: the HEAD can answer before the cut
  // request stored its frames, and the client then asks again, as tus-js-client does.)
  cut.abort();
  await first;
  let rest: Answer | undefined;
  for (let tries = 0; tries < 3 && rest?.status !== 204; tries++) {
    const head = await fetch(`${url}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', [SESSION_HEADER]: 'push-1' } });
    assert.equal(head.status, 200, head.headers.get('snapferry-error-code') ?? '');
    const offset = Number(head.headers.get('upload-offset'));
    rest = await answer(await patch(url, id, offset, wire.subarray(offset), 'push-1'));
    assert.notEqual(rest.code, 'transfer_locked');
  }
  assert.deepEqual([rest?.status, rest?.offset], [204, String(wire.length)]);
});

test('an entry left behind by an instance that died between an upload\'s end and its drop frees its slot at the next creation; a creation under way keeps its slot, one that never finished loses it', async () => {
  const objects = (await s3.bucket()).store('index');
  const client = 'laptop' as SafeName;
  const limits = uploadLimits({ maxOpenUploads: 1 });
  const id = (n: number) => n.toString(16).padStart(32, '0');
  const t0 = Date.now();
  // Upload 1 admitted, created, then terminated by a store that never tells the index (as an instance killed then).
  await admitUpload(objects, client, id(1), limits, t0);
  const uploads = archiveUploads(objects, 'instance-a');
  await uploads.create({ id: id(1), metadata: { [META.chunkSize]: String(CHUNK) }, creationDate: new Date(t0).toISOString() });
  await uploads.remove(id(1));
  await admitUpload(objects, client, id(2), limits, t0);
  assert.deepEqual(await settle(objects, client, t0), { open: [{ id: id(2), bytes: 0 }], ended: { aborted: 1, failed: 0 } });
  // Upload 2 has no state.json: a creation under way holds its slot ...
  await assert.rejects(admitUpload(objects, client, id(3), limits, t0 + 1000), { code: 'too_many_uploads' });
  // ... until it is plainly a creation that failed.
  await admitUpload(objects, client, id(3), limits, t0 + PENDING_MS + 1000);
  assert.deepEqual((await settle(objects, client, t0 + PENDING_MS + 1000)).open, [{ id: id(3), bytes: 0 }]);
});

test('an upload the server ended with a refusal (frame 0 refused for good) counts as failed, by its code, as its transfer is listed; an index from before the codes keeps its failed as expiries', async () => {
  const objects = (await s3.bucket()).store('index');
  const client = 'laptop' as SafeName;
  const limits = uploadLimits({ maxOpenUploads: 4 });
  const id = (n: number) => (0x100 + n).toString(16).padStart(32, '0');
  const refusal = new SnapferryError('parent_changed', 'the client\'s s1, the parent of this incremental, was changed after it was sent');
  const uploads = archiveUploads(objects, 'instance-a', { sink: () => ({ start: () => { throw refusal; }, complete: () => assert.fail('no end') }) });
  // An index as a snapferry before the codes wrote it: two failed, which were expiries then.
  assert.ok(await objects.putIfAbsent(clientUploadsKey(client), Buffer.from(JSON.stringify({ version: 1, open: {}, creations: null, ended: { aborted: 0, failed: 2 } }))));
  for (const n of [1, 2, 3]) {
    await admitUpload(objects, client, id(n), limits);
    await uploads.create({ id: id(n), metadata: { [META.chunkSize]: String(CHUNK) }, creationDate: new Date().toISOString() });
  }
  const body = new PassThrough();
  const writing = uploads.write(id(1), body, 0);
  body.end((await framed(1, 5)).wire);
  await assert.rejects(writing, { code: 'parent_changed' });
  await uploads.remove(id(2));
  const { open, ended } = await settle(objects, client);
  assert.deepEqual(open.map((u) => u.id), [id(3)]);
  assert.deepEqual(ended, { aborted: 1, failed: 3, failedBy: { upload_expired: 2, parent_changed: 1 } });
  assert.deepEqual(failedByCode({ aborted: 0, failed: 2 }), { upload_expired: 2 });
});
