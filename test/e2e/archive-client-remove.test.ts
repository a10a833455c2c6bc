// Archive mode, as test/e2e/client-remove.test.ts on a btrfs server: a client removed from the tokens file has its
// uploads in progress ended (aborted, its segments gone with the upload), seen by every instance on the bucket,
// without a request of its own; another client's upload goes on. Real server, real sockets, a real RGW.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import { removeClient } from '../../server/tokens.ts';
import { META, SESSION_HEADER, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { authHeaders } from '../../client/http/token.ts';
import { sharedS3, type TestBucket } from '../archive/store-fixture.ts';
import { encode, seededBytes } from '../wire/frame-helpers.ts';
import { randomUuid } from '../fixtures/send-streams.ts';
import { aliceBobAdmin, until } from './harness.ts';

const s3 = sharedS3();
const CHUNK = 64 * 1024;

function startOn(bucket: TestBucket, tokensFile: string) {
  const { server } = bucket;
  return startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), tokensFile,
    store: { endpoint: server.endpoint, bucket: bucket.name, prefix: 'removed', region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
}

async function archiveServer(t: { after(fn: () => unknown): void }, bucket: TestBucket, tokensFile: string) {
  const running = await startOn(bucket, tokensFile);
  t.after(() => running.close());
  return running.url;
}

/** An upload of `token`'s client through `url`, two frames of `wire` sent. */
async function begin(url: string, token: string, wire: Buffer, twoFrames: number): Promise<string> {
  const meta: Record<string, string> = { [META.volume]: 'home', [META.snapshot]: 's1', [META.uuid]: randomUuid(), [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK) };
  const created = await fetch(`${url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: {
      ...authHeaders(token), 'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1',
      'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(','),
    },
  });
  assert.equal(created.status, 201, await created.text());
  const id = created.headers.get('location')!.split('/').at(-1)!;
  const patched = await fetch(`${url}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH',
    headers: { ...authHeaders(token), 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream', [SESSION_HEADER]: 'push-1' },
    body: wire.subarray(0, twoFrames),
  });
  assert.equal(patched.status, 204, await patched.text());
  return id;
}

const stateOf = async (url: string, id: string, client: string, admin: string) =>
  ((await (await fetch(`${url}/v1/transfers/${id}?client=${client}`, { headers: authHeaders(admin) })).json()) as { state: string }).state;

test('removing a client ends its archive uploads in progress, through every instance; another client\'s goes on', async (t) => {
  const bucket = await s3.bucket();
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const a = await archiveServer(t, bucket, file);
  const b = await archiveServer(t, bucket, file);
  const { wire, frames } = await encode(seededBytes(4 * CHUNK, 7), { chunkSize: CHUNK, level: 1 });
  const twoFrames = frames[1]!.wireOffset + frames[1]!.wireLength;
  const alices = await begin(a, alice, wire, twoFrames);
  const bobs = await begin(a, bob, wire, twoFrames);

  await removeClient(file, 'alice');
  await until('the removed client\'s upload to end', async () => (await stateOf(b, alices, 'alice', admin)) === 'aborted', 20_000);
  assert.equal(await stateOf(a, alices, 'alice', admin), 'aborted');
  assert.equal(await stateOf(a, bobs, 'bob', admin), 'uploading');
});

test('a client removed while no instance ran has its archive uploads ended as the next instance starts; another client\'s goes on', async (t) => {
  const bucket = await s3.bucket();
  const { file, alice, bob, admin } = await aliceBobAdmin(t);
  const { wire, frames } = await encode(seededBytes(4 * CHUNK, 9), { chunkSize: CHUNK, level: 1 });
  const twoFrames = frames[1]!.wireOffset + frames[1]!.wireLength;
  const first = await startOn(bucket, file);
  const [alices, bobs] = await Promise.all([begin(first.url, alice, wire, twoFrames), begin(first.url, bob, wire, twoFrames)]).finally(() => first.close());

  await removeClient(file, 'alice');
  const url = await archiveServer(t, bucket, file);
  assert.equal(await stateOf(url, alices, 'alice', admin), 'aborted');
  assert.equal(await stateOf(url, bobs, 'bob', admin), 'uploading');
});
