import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly, mutate } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push.ts';
import { ServerApi } from '../../client/api.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { assertReceived, createPair, recordingReporter, until } from './harness.ts';

/** GET with curl, as a script would: status code and parsed JSON body. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- a JSON body, read field by field as a script would
async function curl(url: string, method = 'GET'): Promise<{ status: number; body: any }> {
  const { stdout } = await execa('curl', ['-s', '-X', method, '-w', '\n%{http_code}', url]);
  const nl = stdout.lastIndexOf('\n');
  return { status: Number(stdout.slice(nl + 1)), body: JSON.parse(stdout.slice(0, nl)) };
}

/** Pushes until the server holds the whole stream but (held) has not received it; the push is still waiting. */
async function uploadWithoutReceive(url: string, snapshot: string) {
  // No retries: when the test stops the server under it, this push fails instead of waiting for it forever.
  const pushing = push({ server: url, volume: 'v', snapshots: [snapshot], pollMs: 50, retries: 0 }, recordingReporter());
  pushing.catch(() => undefined);
  const api = new ServerApi({ server: url });
  const transfer = await until('the upload to complete', async () => (await api.transfers()).transfers.find((x) => x.state === 'receiving'), 20_000, 50);
  return { pushing, transfer };
}

test('the JSON endpoints answer curl, and mistakes get JSON 4xx errors', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const { sent } = await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());
  const id = sent[0]!.transfer.id;

  const status = await curl(`${server.url}/v1/status`);
  assert.equal(status.status, 200);
  assert.equal(status.body.service, 'snapferry');
  assert.equal(status.body.snapshots, 1);
  assert.equal(status.body.transfers.received, 1);
  assert.ok(status.body.freeBytes > 0);

  const volumes = await curl(`${server.url}/v1/volumes`);
  assert.deepEqual(volumes.body.volumes.map((v: { name: string; snapshots: number }) => [v.name, v.snapshots]), [['home', 1]]);
  assert.equal(volumes.body.volumes[0].newest.name, 's1');

  const snaps = await curl(`${server.url}/v1/volumes/home/snapshots`);
  assert.equal(snaps.body.snapshots[0].uuid, (await btrfs.subvolumeShow(s1)).uuid);
  assert.equal(snaps.body.snapshots[0].serverUuid, (await btrfs.subvolumeShow(pair.receivedPath('home', 's1'))).uuid);

  const transfers = await curl(`${server.url}/v1/transfers`);
  assert.deepEqual(transfers.body.transfers.map((x: { id: string; state: string }) => [x.id, x.state]), [[id, 'received']]);
  const one = await curl(`${server.url}/v1/transfers/${id}`);
  assert.equal(one.body.snapshot, 's1');
  assert.ok(one.body.rawBytes > 0 && one.body.wireOffset > 0 && one.body.framesVerified > 0);

  const missing = await curl(`${server.url}/v1/transfers/0123456789abcdef0123456789abcdef`);
  assert.equal(missing.status, 404);
  assert.equal(missing.body.error.code, 'not_found');
  const badName = await curl(`${server.url}/v1/volumes/bad%20name/snapshots`);
  assert.equal(badName.status, 400);
  assert.equal(badName.body.error.code, 'invalid_input');
  assert.match(badName.body.error.message, /not allowed/);
  const nowhere = await curl(`${server.url}/v1/nowhere`);
  assert.equal(nowhere.status, 404);
  assert.ok(nowhere.body.error.message.includes('/v1/nowhere'));
  const emptyVolume = await curl(`${server.url}/v1/volumes/other/snapshots`);
  assert.deepEqual(emptyVolume.body.snapshots, []);
  // tus downloads stay off: the spool is not for reading back.
  const download = await curl(`${server.url}${UPLOADS_PATH}/${id}`);
  assert.equal(download.status, 405);
});

test('the receive is a queued job: a repeated finish runs it once, and a restart finds it again', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const first = await pair.startServer({ holdReceives: true });
  const s1 = await pair.snapshot('s1');
  const { pushing, transfer } = await uploadWithoutReceive(first.url, s1);

  // An empty PATCH at the end offset, as tus clients send to learn the upload is done: 204, and no second job.
  const res = await fetch(`${first.url}${UPLOADS_PATH}/${transfer.id}`, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': String(transfer.wireOffset), 'Content-Type': 'application/offset+octet-stream' },
  });
  assert.equal(res.status, 204);
  assert.equal(res.headers.get('upload-offset'), String(transfer.wireOffset));

  // The server dies before the receive ran.
  await first.close();
  await assert.rejects(pushing);
  const second = await pair.startServer();
  await second.service.idle();
  const after = await new ServerApi({ server: second.url }).transfer(transfer.id);
  assert.equal(after.state, 'received');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
  const again = await push({ server: second.url, volume: 'v', snapshots: [s1] }, recordingReporter());
  assert.deepEqual(again.present, ['s1']);
  assert.equal(again.sent.length, 0);
});

test('the catalog survives a restart and is reconciled with the disk', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const first = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'r');
  const s2 = await pair.snapshot('s2');
  await push({ server: first.url, volume: 'v', snapshots: [s1, s2] }, recordingReporter());
  await first.close();

  await btrfs.deleteSubvolume(pair.receivedPath('v', 's1'));
  const second = await pair.startServer();
  const list = await new ServerApi({ server: second.url }).snapshots('v');
  assert.deepEqual(list.snapshots.map((s) => s.name), ['s2']);
  assert.deepEqual(list.removed.map((r) => [r.name, r.reason]), [['s1', 'deleted from disk']]);
});

test('a partial receive left by a crash is removed at start and received again from the spool', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const first = await pair.startServer({ holdReceives: true });
  const s1 = await pair.snapshot('s1');
  const { transfer } = await uploadWithoutReceive(first.url, s1);
  await first.close();
  // What a crash mid-receive leaves: a writable subvolume under the staging name.
  const staged = path.join(pair.root, 'volumes', 'default', 'v', `.incoming-${transfer.id}`);
  await fs.mkdir(path.dirname(staged), { recursive: true });
  await btrfs.createSubvolume(staged);
  await fs.writeFile(path.join(staged, 'half'), 'written before the crash');

  const second = await pair.startServer();
  await second.service.idle();
  assert.equal((await new ServerApi({ server: second.url }).transfer(transfer.id)).state, 'received');
  assert.deepEqual(await fs.readdir(path.join(pair.root, 'volumes', 'default', 'v')), ['s1']);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('the HTTP server never times out a long request (Node defaults to 300 s, which kills a slow PATCH)', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  assert.equal(server.http.requestTimeout, 0);
});

test('expiry frees abandoned uploads but never a complete one that waits for its receive', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer({ holdReceives: true, expireAfterMs: 2000 });
  const s1 = await pair.snapshot('s1');
  const { pushing, transfer: complete } = await uploadWithoutReceive(server.url, s1);

  const b64 = (v: string) => Buffer.from(v).toString('base64');
  const metadata = { volume: 'w', snapshot: 's1', uuid: (await btrfs.subvolumeShow(s1)).uuid, format: 'sfr1', chunkSize: '65536' };
  const created = await fetch(`${server.url}${UPLOADS_PATH}/`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0',
      'Upload-Defer-Length': '1',
      'Upload-Metadata': Object.entries(metadata).map(([k, v]) => `${k} ${b64(v)}`).join(','),
    },
  });
  assert.equal(created.status, 201, await created.text());
  const abandoned = created.headers.get('location')!.split('/').pop()!;

  await new Promise((r) => setTimeout(r, 2300));
  // The server's own sweep (every 500 ms at this period) or this call, whichever comes first, expires it.
  await server.service.deleteExpired();
  const spool = await fs.readdir(path.join(pair.root, 'spool'));
  assert.ok(spool.includes(complete.id), 'the complete upload is kept');
  assert.ok(!spool.some((f) => f.startsWith(abandoned)), 'the abandoned upload is gone');
  const api = new ServerApi({ server: server.url });
  const expired = await api.transfer(abandoned);
  assert.equal(expired.state, 'failed');
  assert.equal(expired.error?.code, 'upload_expired');

  server.service.resumeReceives();
  const result = await pushing;
  assert.equal(result.sent[0]?.transfer.state, 'received');
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
