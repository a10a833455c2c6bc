/**
 * Issue 17, item 3: a client cannot crowd others out of the server's disk or catalog. Its quota counts the bytes its
 * uploads really hold in the spool (never a declared length), failed transfers' kept spools included; those spools
 * count as open uploads too, go with an abort or a tus DELETE, and expire; creations are rate limited; the catalog
 * forgets ended transfers after a while, but never a received snapshot.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly } from '../fixtures/btrfs.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { create, encodeMetadata, hostileServer, metadataFor, patch, settled, uploadStream, type HostileServer } from './hostile-client.ts';

const KiB = 1024;

/** A full send stream of `bytes` of random (incompressible) data in one file, after `extra` commands. */
function bigStream(uuid: string, bytes: number, extra: (b: SendStreamBuilder) => SendStreamBuilder = (b) => b): Buffer {
  const noise = crypto.randomBytes(bytes);
  const b = new SendStreamBuilder().subvol('snap', uuid).file('big', noise.subarray(0, 32 * KiB));
  for (let at = 32 * KiB; at < bytes; at += 32 * KiB) b.write('big', noise.subarray(at, at + 32 * KiB), at);
  return extra(b).end().build();
}

/** The framed stream without its end frame (a header only): an upload that holds all this and never completes. */
async function framedWithoutEnd(raw: Buffer): Promise<Buffer> {
  const framed = await frameStream(raw);
  return framed.subarray(0, framed.length - FRAME_HEADER_SIZE);
}

/** Every byte in the spool folder: what the client's uploads really hold on disk. */
async function spoolOnDisk(h: HostileServer): Promise<number> {
  const dir = path.join(h.root, 'spool');
  let total = 0;
  for (const name of await fs.readdir(dir)) total += (await fs.stat(path.join(dir, name))).size;
  return total;
}

function abort(h: HostileServer, id: string): Promise<Response> {
  return fetch(`${h.server.url}/v1/transfers/${id}/abort`, { method: 'POST' });
}

function tusDelete(h: HostileServer, id: string): Promise<Response> {
  return fetch(`${h.server.url}${UPLOADS_PATH}/${id}`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
}

/** Uploads a whole stream that the send-stream policy refuses at its receive: its transfer fails, its spool stays. */
async function failedTransfer(h: HostileServer, volume: string, bytes: number): Promise<string> {
  const uuid = randomUuid();
  const raw = bigStream(uuid, bytes, (b) => b.file('../escape', Buffer.from('x')));
  const { id, patched } = await uploadStream(h.server.url, metadataFor(volume, 'snap', uuid), raw);
  assert.equal(patched.status, 204, patched.text);
  const t = await settled(h, id);
  assert.equal(t.state, 'failed');
  assert.equal(t.error?.code, 'sendstream_unsafe_path');
  assert.ok((await fs.stat(path.join(h.root, 'spool', id))).size > bytes, 'the failed transfer keeps its spool');
  return id;
}

test('declared lengths do not hide stored bytes: uploads that declare 1000 bytes and hold far more stay within the quota together', rootOnly, async (t) => {
  const quota = 2 * 1024 * KiB;
  const h = await hostileServer(t, { limits: { quotaBytes: quota } });
  const statuses: string[] = [];
  for (let i = 0; i < 4; i++) {
    const uuid = randomUuid();
    const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor(`decl${i}`, 'snap', uuid)) }, 1000);
    // 1.6 MiB each, in frames that verify, never the end frame: four of them are three times the quota. Once a
    // refused one keeps up to the quota's line, not even the 1000 bytes declared fit: the creation is refused.
    const r = created.status === 201 ? await patch(h.server.url, created.id!, 0, await framedWithoutEnd(bigStream(uuid, 1600 * KiB))) : created;
    statuses.push(`${r.status} ${r.code ?? ''}`.trim());
    assert.ok(await spoolOnDisk(h) <= quota, `after upload ${i} the spool holds ${await spoolOnDisk(h)} bytes, over the quota of ${quota}`);
  }
  assert.equal(statuses[0], '204');
  assert.ok(statuses.slice(1).every((s) => s === '413 quota_exceeded'), statuses.join(', '));
});

test('uploads sent at once cannot each take the whole quota: concurrent PATCHes see each other\'s bytes', rootOnly, async (t) => {
  const quota = 2 * 1024 * KiB;
  const h = await hostileServer(t, { limits: { quotaBytes: quota } });
  const bodies = await Promise.all([0, 1, 2, 3].map(async (i) => {
    const uuid = randomUuid();
    const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor(`par${i}`, 'snap', uuid)) });
    assert.equal(created.status, 201, created.text);
    return { id: created.id!, body: await framedWithoutEnd(bigStream(uuid, 1200 * KiB)) };
  }));
  const replies = await Promise.all(bodies.map((b) => patch(h.server.url, b.id, 0, b.body)));
  assert.ok(await spoolOnDisk(h) <= quota, `the spool holds ${await spoolOnDisk(h)} bytes, over the quota of ${quota}`);
  assert.ok(replies.some((r) => r.code === 'quota_exceeded'), replies.map((r) => r.status).join(', '));
});

test('a body of tiny frames cannot take the frame index past the quota: each record is counted before it is written', rootOnly, async (t) => {
  const uuid = randomUuid();
  // Zeros in 48 KiB writes: each 64 KiB frame compresses to about a hundred bytes, and adds a 64-byte index record.
  const zeros = Buffer.alloc(48 * KiB);
  const b = new SendStreamBuilder().subvol('snap', uuid).file('zeros', zeros);
  for (let at = zeros.length; at < 24 * 1024 * KiB; at += zeros.length) b.write('zeros', zeros, at);
  const body = await framedWithoutEnd(b.end().build());
  // Room for the stream and the upload's record, not for the index of its four hundred frames: one PATCH of it all,
  // admitted in a chunk or two, used to write every record after its chunk's admission, past the quota's line.
  const quota = body.length + 4 * KiB;
  const h = await hostileServer(t, { limits: { quotaBytes: quota } });
  const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('tiny', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const reply = await patch(h.server.url, created.id!, 0, body);
  assert.equal(reply.code, 'quota_exceeded', `${reply.status} ${reply.text}`);
  assert.ok(await spoolOnDisk(h) <= quota, `the spool holds ${await spoolOnDisk(h)} bytes, over the quota of ${quota}`);
});

test("a failed transfer's kept spool counts against the quota and as an open upload, until abort or a tus DELETE frees it", rootOnly, async (t) => {
  const quota = 3 * 1024 * KiB;
  const h = await hostileServer(t, { limits: { quotaBytes: quota, maxOpenUploads: 2 } });
  const first = await failedTransfer(h, 'f1', 1200 * KiB);
  const second = await failedTransfer(h, 'f2', 1200 * KiB);

  // Two spools kept: the open-upload limit is reached, whatever their transfers' state.
  const third = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('f3', 'snap', randomUuid())) });
  assert.equal(third.status, 429, third.text);
  assert.equal(third.code, 'too_many_uploads');
  assert.match(third.text, /failed/);

  // The API's abort deletes a failed transfer's spool (it stays failed, with its reason), which frees a slot...
  const aborted = await abort(h, first);
  assert.equal(aborted.status, 200);
  assert.equal(((await aborted.json()) as { state: string }).state, 'failed');
  await assert.rejects(fs.stat(path.join(h.root, 'spool', first)));
  // ...but the other failed spool still holds 1.2 MiB of the 3 MiB quota: an upload of 2.4 MiB does not fit.
  const uuid = randomUuid();
  const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('f3', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const body = await framedWithoutEnd(bigStream(uuid, 2400 * KiB));
  const over = await patch(h.server.url, created.id!, 0, body);
  assert.equal(over.status, 413, over.text);
  assert.equal(over.code, 'quota_exceeded');
  assert.ok(await spoolOnDisk(h) <= quota);

  // A tus DELETE of the failed upload frees its spool too; then the same upload goes on and fits.
  const deleted = await tusDelete(h, second);
  assert.equal(deleted.status, 204, await deleted.text());
  await assert.rejects(fs.stat(path.join(h.root, 'spool', second)));
  assert.equal(h.server.service.transferRecord(second)?.state, 'failed');
  // Where the refused PATCH stopped: its verified frames and the part of the next that fit under the quota.
  const head = await fetch(`${h.server.url}${UPLOADS_PATH}/${created.id!}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const offset = Number(head.headers.get('upload-offset'));
  assert.ok(offset > (await h.server.service.progress(created.id!)).wireOffset, `the server holds ${offset} bytes`);
  const rest = await patch(h.server.url, created.id!, offset, body.subarray(offset));
  assert.equal(rest.status, 204, rest.text);
});

test('a tus DELETE of an upload in progress aborts its transfer: its slot and its volume are free again', rootOnly, async (t) => {
  const h = await hostileServer(t, { limits: { maxOpenUploads: 1 } });
  const uuid = randomUuid();
  const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('del', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const body = await framedWithoutEnd(bigStream(uuid, 300 * KiB));
  assert.equal((await patch(h.server.url, created.id!, 0, body)).status, 204);

  const deleted = await tusDelete(h, created.id!);
  assert.equal(deleted.status, 204, await deleted.text());
  assert.equal(h.server.service.transferRecord(created.id!)?.state, 'aborted');
  assert.deepEqual(await fs.readdir(path.join(h.root, 'spool')), []);
  const again = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('del', 'snap', uuid)) });
  assert.equal(again.status, 201, again.text);
});

test('a failed transfer\'s spool expires like an abandoned upload, and the catalog then forgets the transfer', rootOnly, async (t) => {
  const h = await hostileServer(t, { expireAfterMs: 1500, endedTransfers: { keepForMs: 1500, maxPerClient: 100 } });
  const id = await failedTransfer(h, 'exp', 200 * KiB);
  const end = Date.now() + 20_000;
  while (h.server.service.transferRecord(id) !== undefined && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  await assert.rejects(fs.stat(path.join(h.root, 'spool', id)), 'the spool expired');
  assert.equal(h.server.service.transferRecord(id), undefined, 'the ended transfer was forgotten');
});

test('create-and-abort cannot be repeated without limit: creations beyond the rate get 429 with Retry-After', rootOnly, async (t) => {
  const h = await hostileServer(t, { limits: { creationsPerMinute: 12, creationBurst: 5 } });
  const statuses: number[] = [];
  let refused: Awaited<ReturnType<typeof create>> | null = null;
  for (let i = 0; i < 8; i++) {
    const r = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('flood', 'snap', randomUuid())) });
    statuses.push(r.status);
    if (r.status === 201) assert.equal((await abort(h, r.id!)).status, 200);
    else refused ??= r;
  }
  assert.deepEqual(statuses, [201, 201, 201, 201, 201, 429, 429, 429]);
  assert.equal(refused?.code, 'too_many_creations', refused?.text);
  const after = Number(refused?.headers.get('retry-after'));
  assert.ok(after >= 1 && after <= 5, `Retry-After ${refused?.headers.get('retry-after')}`);
  assert.equal((JSON.parse(refused!.text) as { error: { retryable: boolean } }).error.retryable, true);
  assert.equal(h.server.service.transferRecords().length, 5, 'a refused creation records nothing');
  // The bucket refills: once Retry-After has passed, one more creation goes through.
  await new Promise((r) => setTimeout(r, after * 1000));
  const later = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('flood', 'snap', randomUuid())) });
  assert.equal(later.status, 201, later.text);
});

test('the catalog keeps a bounded number of ended transfers, never a received snapshot, and the next push builds on it', rootOnly, async (t) => {
  const h = await hostileServer(t, { expireAfterMs: 2000, endedTransfers: { keepForMs: 7 * 86_400_000, maxPerClient: 3 } });
  const base = randomUuid();
  const { id: receivedId, patched } = await uploadStream(h.server.url, metadataFor('hist', 'base', base), new SendStreamBuilder().subvol('base', base).file('f', Buffer.from('x')).end().build());
  assert.equal(patched.status, 204, patched.text);
  assert.equal((await settled(h, receivedId)).state, 'received');
  for (let i = 0; i < 10; i++) {
    const r = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('hist', `s${i}`, randomUuid())) });
    assert.equal(r.status, 201, r.text);
    assert.equal((await abort(h, r.id!)).status, 200);
  }
  const end = Date.now() + 20_000;
  while (h.server.service.transferRecords().length > 3 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
  const kept = h.server.service.transferRecords();
  assert.equal(kept.length, 3, kept.map((x) => `${x.snapshot} ${x.state}`).join(', '));
  assert.ok(kept.every((x) => x.state === 'aborted'), 'the newest ended transfers are kept');
  // The snapshot stays, and a push on top of it is planned and accepted as before.
  assert.deepEqual(h.server.service.snapshotRecords('default', 'hist').map((s) => s.uuid), [base]);
  const child = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('hist', 'child', randomUuid(), base)) });
  assert.equal(child.status, 201, child.text);
});
