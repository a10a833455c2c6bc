// The offset a HEAD answers after a PATCH of the same upload already reached the server is the one after that PATCH,
// however long the PATCH waits on the bucket before tus sees it (server/upload-store/arrival-locker.ts): the HEAD a
// client sends after a cut must not read the offset from before the cut request's frames, or its next PATCH starts
// behind the bucket and its body crosses until offset_mismatch (the flaky archive-serve cut case). The bucket's
// slowness is made real with a proxy in front of the RGW that holds lease reads (test/archive/slow-lease-proxy.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import { META, SESSION_HEADER, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { sharedS3 } from '../archive/store-fixture.ts';
import { slowLeaseProxy } from '../archive/slow-lease-proxy.ts';
import { encode, seededBytes } from '../wire/frame-helpers.ts';

const s3 = sharedS3();
const CHUNK = 64 * 1024;
const TUS = { 'Tus-Resumable': '1.0.0', [SESSION_HEADER]: 'push-1' };

test('a HEAD sent after a PATCH reached the archive server answers the offset after that PATCH, though the PATCH waited on the bucket before tus', { timeout: 60_000 }, async (t) => {
  const bucket = await s3.bucket();
  const { server } = bucket;
  const slow = await slowLeaseProxy(server.endpoint);
  t.after(() => slow.close());
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(),
    store: { endpoint: slow.endpoint, bucket: bucket.name, prefix: 'order', region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
  t.after(() => running.close());
  const url = running.url;

  const meta: Record<string, string> = {
    [META.volume]: 'v', [META.snapshot]: 's1', [META.uuid]: '00000000-0000-4000-8000-000000000001', [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK),
  };
  const created = await fetch(`${url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: { ...TUS, 'Upload-Defer-Length': '1', 'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(',') },
  });
  assert.equal(created.status, 201);
  const id = created.headers.get('location')!.split('/').at(-1)!;
  const { wire, frames } = await encode(seededBytes(4 * CHUNK, 7), { chunkSize: CHUNK, level: 1 });
  const last = frames.at(-1)!;
  const end = last.wireOffset + last.wireLength;

  slow.delayMs = 1500;
  const patched = fetch(`${url}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH', headers: { ...TUS, 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' }, body: wire,
  });
  // The PATCH, body and all, is at the server and waiting on its lease read; then the client asks the offset.
  while (slow.held === 0) await sleep(10);
  const head = await fetch(`${url}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: TUS });
  const patch = await patched;
  slow.delayMs = 0;
  assert.equal(patch.status, 204, await patch.text());
  assert.equal(Number(patch.headers.get('upload-offset')), end);
  assert.equal(head.status, 200);
  assert.equal(Number(head.headers.get('upload-offset')), end, 'the HEAD answered the offset from before the PATCH it came after');
});
