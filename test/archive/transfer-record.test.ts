// An archive upload whose record (uploads/ID/transfer.json) cannot be read, over real sockets on a real RGW: every
// request on it is a 500 that names the object and says what to do, the listing fails rather than leave it out (a
// client would take that for "gone" and send the whole stream again), nothing of its state or segments is touched,
// and once the record is back the upload goes on from the offset the bucket recorded.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ERROR_CODE_HEADER, META, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import { transferKey } from '../../server/archive/archive-transfer.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';
import { sharedS3, type TestBucket } from './store-fixture.ts';

const s3 = sharedS3();
const CHUNK = 64 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0' };

async function instance(t: { after(fn: () => unknown): void }, bucket: TestBucket) {
  const { server } = bucket;
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(),
    store: { endpoint: server.endpoint, bucket: bucket.name, prefix: 'archive', region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
  t.after(() => running.close());
  return running.url;
}

test('an upload whose transfer.json cannot be read answers 500 saying what to do, keeps its segments, and resumes once the record is back', rootOnly, async (t) => {
  const bucket = await s3.bucket();
  const store = bucket.store();
  const first = await instance(t, bucket);
  const meta: Record<string, string> = {
    [META.volume]: 'v', [META.snapshot]: 's1', [META.uuid]: crypto.randomUUID(), [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK),
  };
  const created = await fetch(`${first}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',') },
  });
  assert.equal(created.status, 201);
  const id = new URL(created.headers.get('location')!).pathname.split('/').pop()!;
  const { wire, frames } = await encode(mixedBytes(6 * CHUNK, 4096), { chunkSize: CHUNK, level: 0 });
  const third = frames[2]!;
  const sent = wire.subarray(0, third.wireOffset + third.wireLength);
  const patched = await fetch(`${first}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: sent,
  });
  assert.equal(patched.status, 204, await patched.text());
  const segments = async () => {
    const keys: string[] = [];
    for await (const o of store.list(`uploads/${id}/seg-`)) keys.push(o.key);
    return keys;
  };
  const stored = await segments();
  assert.ok(stored.length > 0);

  const good = (await store.get(transferKey(id)))!;
  assert.ok(await store.swap(transferKey(id), Buffer.from('{"id": "'), good.etag));

  // Another instance has not seen the upload: it must read the record to know whose it is.
  const other = await instance(t, bucket);
  const head = await fetch(`${other}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: TUS });
  assert.equal(head.status, 500);
  assert.equal(head.headers.get(ERROR_CODE_HEADER), 'archive_object_corrupt');
  for (const url of [`${other}/v1/transfers/${id}`, `${other}/v1/transfers`]) {
    const res = await fetch(url);
    assert.equal(res.status, 500, url);
    const { error } = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(error.code, 'archive_object_corrupt');
    assert.match(error.message, new RegExp(`uploads/${id}/transfer\\.json`));
    assert.match(error.message, /state and segments are kept: put the record back from the bucket's versions and the push resumes/);
    assert.doesNotMatch(error.message, /remove the archive/, 'advice that loses every stream in the bucket');
  }
  assert.deepEqual(await segments(), stored, 'the segments stay');

  // The record back: the upload stands where the bucket recorded it, and takes the rest from there.
  const now = (await store.get(transferKey(id)))!;
  assert.ok(await store.swap(transferKey(id), good.body, now.etag));
  const again = await fetch(`${other}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: TUS });
  assert.equal(again.status, 200);
  assert.equal(Number(again.headers.get('upload-offset')), sent.length);
  const rest = await fetch(`${other}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH', headers: { ...TUS, 'Upload-Offset': String(sent.length), 'Content-Type': 'application/offset+octet-stream' }, body: wire.subarray(sent.length),
  });
  assert.equal(rest.status, 204, await rest.text());
  assert.equal(Number(rest.headers.get('upload-offset')), wire.length);
});
