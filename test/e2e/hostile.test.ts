/**
 * Hostile input, each case answered with a clear 4xx or a failed transfer with its code, and nothing written outside
 * the client's volume folder on the server's filesystem (nor on the host).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ERROR_CODE_HEADER, SESSION_HEADER, UPLOADS_PATH } from '../../core/protocol.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { DEFAULT_CLIENT } from '../../server/auth.ts';
import { namespacedUuid } from '../../server/uuid-namespace.ts';
import {
  create, encodeMetadata, hostileServer, listTree, metadataFor, patch, rawGet, settled, uploadStream, writtenOutside, type HostileServer,
} from './hostile-client.ts';

const data = Buffer.from('harmless file\n');
const CANARY = `hostile-canary-${process.pid}`;

/** Uploads `raw` for `volume`, waits for the receive, returns the transfer's final state and error code. */
async function pushStream(h: HostileServer, volume: string, raw: Buffer, uuid: string, parentUuid?: string) {
  const before = await listTree(h.mount);
  const { id, patched } = await uploadStream(h.server.url, metadataFor(volume, 'snap', uuid, parentUuid), raw);
  assert.equal(patched.status, 204, patched.text);
  const t = await settled(h, id);
  const outside = await writtenOutside(h.mount, before, volume);
  assert.deepEqual(outside, [], 'nothing is written outside the volume folder');
  await assertNoCanaryOnHost();
  return { state: t?.state, code: t?.error?.code, message: t?.error?.message ?? '' };
}

async function assertNoCanaryOnHost(): Promise<void> {
  for (const dir of ['/', '/tmp', '/root']) {
    await assert.rejects(fs.access(path.join(dir, CANARY)), `${dir}/${CANARY} must not exist`);
  }
}

test('hostile streams are refused before btrfs receive applies a refused command, and leave nothing; a harmless one is received', rootOnly, async (t) => {
  const h = await hostileServer(t);

  // The control: the builder's streams are good enough for btrfs receive, so refusals below are the rules'.
  const good = randomUuid();
  const ok = await pushStream(h, 'good', new SendStreamBuilder().subvol('snap', good).mkdir('d').file('d/f', data).end().build(), good);
  assert.equal(ok.state, 'received', ok.message);
  assert.equal(await fs.readFile(path.join(h.volumeDir('good'), 'snap', 'd', 'f'), 'utf8'), data.toString());
  const foreignSource = (await btrfs.subvolumeShow(path.join(h.volumeDir('good'), 'snap'))).receivedUuid;
  assert.equal(foreignSource, namespacedUuid(DEFAULT_CLIENT, good));

  const cases: { name: string; code: string; build: (uuid: string) => Buffer }[] = [
    { name: 'path escape ../x', code: 'sendstream_unsafe_path', build: (u) => padded(u).file(`../${CANARY}`, data).end().build() },
    { name: 'deep escape', code: 'sendstream_unsafe_path', build: (u) => padded(u).mkdir('a').file(`a/../../../../../../../../tmp/${CANARY}`, data).end().build() },
    { name: 'absolute path', code: 'sendstream_unsafe_path', build: (u) => padded(u).file('f', data).write(`/tmp/${CANARY}`, data).end().build() },
    { name: 'NUL in a path', code: 'sendstream_unsafe_path', build: (u) => padded(u).file(Buffer.from(`f\0/../../${CANARY}`), data).end().build() },
    // A file of another volume's snapshot, found by btrfs receive by UUID across the whole filesystem.
    { name: 'clone from a foreign uuid', code: 'sendstream_foreign_clone', build: (u) => padded(u).file('f', data).clone('f', 0, 4096, good, 'd/f').end().build() },
    { name: 'two subvolume commands', code: 'sendstream_second_subvolume', build: (u) => padded(u).subvol('second', randomUuid()).end().build() },
    { name: 'missing end', code: 'sendstream_truncated', build: (u) => padded(u).file('f', data).build() },
    { name: 'not a send stream after all', code: 'sendstream_bad_command', build: (u) => padded(u).cmd(0x99).end().build() },
  ];
  for (const c of cases) {
    const uuid = randomUuid();
    const got = await pushStream(h, `v-${cases.indexOf(c)}`, c.build(uuid), uuid);
    // (Each stream starts with a file larger than a chunk: frame 0, checked as it arrives, holds no hostile command.)
    assert.equal(got.state, 'failed', `${c.name}: ${got.message}`);
    assert.equal(got.code, c.code, `${c.name}: ${got.message}`);
    // The refusal stopped btrfs receive, and its staging subvolume was deleted.
    assert.deepEqual(await fs.readdir(h.volumeDir(`v-${cases.indexOf(c)}`)).catch(() => []), [], c.name);
  }
});

test('a symlink that points out is followed only inside the volume folder (btrfs receive --chroot)', rootOnly, async (t) => {
  const h = await hostileServer(t);
  // From volumes/default/VOLUME/.incoming-ID/up, '../../../..' is the server's root folder: the same filesystem, so
  // without the chroot the file would be created there (a rename could not: it fails across subvolumes).
  for (const [i, target] of ['/', '../../../..', '../../../../../../../../../..'].entries()) {
    const uuid = randomUuid();
    // Legal by the stream rules (a symlink's text may be anything), so only the chroot keeps it in.
    const raw = full(uuid).symlink('up', target).mkfileAt(`up/${CANARY}`).write(`up/${CANARY}`, data).file('after', data).end().build();
    const got = await pushStream(h, `sym${i}`, raw, uuid);
    assert.ok(got.state === 'received' || got.state === 'failed', got.message);
  }
});

test('metadata that disagrees with the stream, or a stream that is not one, is refused at its first frame (422)', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const url = h.server.url;
  const uuid = randomUuid();
  const before = await listTree(h.mount);
  const other = await uploadStream(url, metadataFor('m1', 'snap', uuid), full(randomUuid()).end().build());
  assert.equal(other.patched.status, 422, other.patched.text);
  assert.equal(other.patched.code, 'stream_metadata_mismatch');
  assert.match(other.patched.text, /its UUID is/);
  const u2 = randomUuid();
  const parent = await uploadStream(url, metadataFor('m2', 'snap', u2), new SendStreamBuilder().snapshot('snap', u2, randomUuid()).end().build());
  assert.equal(parent.patched.status, 422);
  assert.match(parent.patched.text, /its parent is/);
  const u3 = randomUuid();
  const name = await uploadStream(url, metadataFor('m3', 'snap', u3), new SendStreamBuilder().subvol(`../${CANARY}`, u3).end().build());
  assert.equal(name.patched.status, 422);
  assert.match(name.patched.text, /not a plain name/);
  const random = await uploadStream(url, metadataFor('m4', 'snap', randomUuid()), Buffer.from('#!/bin/sh\nrm -rf /\n'.repeat(100)));
  assert.equal(random.patched.status, 422);
  assert.equal(random.patched.code, 'sendstream_bad_magic');
  for (const v of ['m1', 'm2', 'm3', 'm4']) assert.deepEqual(await writtenOutside(h.mount, before, v), []);
});

test('hostile names in tus metadata and URL parameters get 400, and create nothing', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const url = h.server.url;
  const before = await listTree(h.mount);
  const bad = ['..', '.', 'a/b', '../../etc', '/abs', 'a\0b', 'tab\there', 'bell\u0007', 'new\nline', 'x'.repeat(10 * 1024), '', '.hidden', 'é'];
  for (const name of bad) {
    for (const field of ['volume', 'snapshot'] as const) {
      const meta = metadataFor('ok', 'ok', randomUuid());
      meta[field] = name;
      const r = await create(url, { 'Upload-Metadata': encodeMetadata(meta) });
      assert.equal(r.status, 400, `${field} ${JSON.stringify(name.slice(0, 20))}: ${r.status} ${r.text}`);
      assert.equal(r.code, 'invalid_input');
    }
  }
  for (const uuid of ['not-a-uuid', '../../../../etc/passwd', `${randomUuid()}\0`]) {
    const r = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('ok', 'ok', uuid)) });
    assert.equal(r.status, 400, r.text);
    const p = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('ok', 'ok', randomUuid(), uuid)) });
    assert.equal(p.status, 400, p.text);
  }
  const paths = ['%2e%2e', '..%2f..%2fetc', '%00', 'a%07b', 'a%0ab', 'x'.repeat(10 * 1024), '%2fetc', '..'];
  for (const p of paths) {
    const r = await rawGet(url, `/v1/volumes/${p}/snapshots`);
    assert.ok(r.status >= 400 && r.status < 500, `${p.slice(0, 20)}: ${r.status} ${r.text.slice(0, 200)}`);
    const tr = await rawGet(url, `/v1/transfers/${p}`);
    assert.ok(tr.status >= 400 && tr.status < 500, `${p.slice(0, 20)}: ${tr.status}`);
  }
  assert.deepEqual(await writtenOutside(h.mount, before, 'ok'), []);
  assert.deepEqual(await fs.readdir(path.join(h.root, 'volumes')), []);
});

test('garbage and truncated tus headers, and a PATCH at the wrong offset, get 4xx', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const url = h.server.url;
  const meta = encodeMetadata(metadataFor('g', 'snap', randomUuid()));
  const notBase64 = await create(url, { 'Upload-Metadata': 'volume !!!not*base64!!!,snapshot ???' });
  assert.equal(notBase64.status, 400, notBase64.text);
  const noResumable = await fetch(`${url}/v1/uploads/`, { method: 'POST', headers: { 'Upload-Defer-Length': '1', 'Upload-Metadata': meta } });
  assert.equal(noResumable.status, 412);
  const badLength = await fetch(`${url}/v1/uploads/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': 'lots', 'Upload-Metadata': meta } });
  assert.equal(badLength.status, 400);
  const negative = await fetch(`${url}/v1/uploads/`, { method: 'POST', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Length': '-5', 'Upload-Metadata': meta } });
  assert.equal(negative.status, 400);

  const created = await create(url, { 'Upload-Metadata': meta });
  assert.equal(created.status, 201, created.text);
  const id = created.id!;
  const framed = await frameStream(full(randomUuid()).end().build());
  for (const offset of ['abc', '-1', '1e3', '']) {
    const r = await patch(url, id, offset, framed);
    assert.ok(r.status >= 400 && r.status < 500, `Upload-Offset ${JSON.stringify(offset)}: ${r.status}`);
  }
  const wrong = await patch(url, id, 17, framed);
  assert.equal(wrong.status, 409);
  const noType = await fetch(`${url}/v1/uploads/${id}`, { method: 'PATCH', headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0' }, body: framed });
  assert.ok(noType.status >= 400 && noType.status < 500, `no Content-Type: ${noType.status}`);
  // After all that, the upload is untouched: still at 0.
  assert.equal((await h.server.service.progress(id)).wireOffset, 0);
});

test('quota (413) on Upload-Length, on a deferred length and on bytes; a flood of creations meets the open-upload limit (429)', rootOnly, async (t) => {
  const quota = 200_000;
  const h = await hostileServer(t, { limits: { quotaBytes: quota, maxOpenUploads: 3 } });
  const url = h.server.url;

  const big = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('q1', 's', randomUuid())) }, quota + 1);
  assert.equal(big.status, 413, big.text);
  assert.equal(big.code, 'quota_exceeded');
  assert.match(big.text, /quota of 200000 bytes.*raise limits.quota in the server's config/);
  const failed = h.server.service.transferRecords({ volume: 'q1' })[0];
  assert.equal(failed?.state, 'failed', 'a refused creation does not keep the volume busy');

  const deferred = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('q2', 's', randomUuid())) });
  assert.equal(deferred.status, 201);
  const declared = await patch(url, deferred.id!, 0, Buffer.alloc(0), { 'Upload-Length': String(quota * 10) });
  assert.equal(declared.status, 413, declared.text);
  assert.equal(declared.code, 'quota_exceeded');

  // A stream bigger than the quota, length never declared: refused once its bytes pass the quota.
  const uuid = randomUuid();
  const noise = crypto.randomBytes(400_000);
  const huge = full(uuid).file('big', noise.subarray(0, 32768));
  for (let at = 32768; at < noise.length; at += 32768) huge.write('big', noise.subarray(at, at + 32768), at);
  const growing = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('q3', 's', uuid)) });
  const sent = await patch(url, growing.id!, 0, await frameStream(huge.end().build()));
  assert.equal(sent.status, 413, sent.text);
  const spooled = await fs.stat(path.join(h.root, 'spool', growing.id!)).then((s) => s.size, () => 0);
  assert.ok(spooled <= quota, `the spool holds ${spooled} bytes, no more than the quota`);

  // Flood: open uploads on many volumes until the limit answers 429.
  const openBefore = h.server.service.transferRecords().filter((x) => x.state === 'uploading').length;
  const statuses: number[] = [];
  for (let i = 0; i < 6; i++) {
    const r = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor(`flood${i}`, 's', randomUuid())) });
    statuses.push(r.status);
    if (r.status === 429) {
      assert.equal(r.code, 'too_many_uploads');
      assert.match(r.text, /limit is 3.*abort/);
    }
  }
  const open = h.server.service.transferRecords().filter((x) => x.state === 'uploading').length;
  assert.equal(open, 3);
  assert.ok(statuses.includes(429) && statuses.filter((s) => s === 201).length === 3 - openBefore, `statuses ${statuses.join(',')}`);
});

test("a snapshot UUID held in another volume cannot be pushed again (btrfs finds parents by UUID across the filesystem)", rootOnly, async (t) => {
  const h = await hostileServer(t);
  const uuid = randomUuid();
  const first = await pushStream(h, 'u1', full(uuid).file('f', data).end().build(), uuid);
  assert.equal(first.state, 'received', first.message);
  const again = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('u2', 'snap', uuid)) });
  assert.equal(again.status, 409, again.text);
  assert.equal(again.code, 'snapshot_uuid_taken');
});

function full(uuid: string): SendStreamBuilder {
  return new SendStreamBuilder().subvol('snap', uuid);
}

/** A full stream whose first 64 KiB chunk (frame 0, which the server checks as it arrives) holds only a harmless file. */
function padded(uuid: string): SendStreamBuilder {
  const b = full(uuid).file('pad', Buffer.alloc(32768, 1));
  for (let at = 32768; at < 3 * 32768; at += 32768) b.write('pad', Buffer.alloc(32768, 1), at);
  return b;
}

test("tus's own refusals come with a code and a reason: a PATCH at the wrong offset is a 409 that says what happens next", rootOnly, async (t) => {
  const h = await hostileServer(t);
  const uuid = randomUuid();
  const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('wrong-offset', 'snap', uuid)) });
  assert.ok(created.id, created.text);
  const framed = await frameStream(new SendStreamBuilder().subvol('snap', uuid).end().build());
  const r = await patch(h.server.url, created.id, 10, framed);
  assert.equal(r.status, 409);
  assert.equal(r.code, 'offset_mismatch', r.text);
  assert.match(r.text, /asks the server's offset/);
});

test("a refused HEAD, which carries no body, still names its reason: another push's lease is transfer_locked", rootOnly, async (t) => {
  const h = await hostileServer(t);
  const uuid = randomUuid();
  const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('leased', 'snap', uuid)), [SESSION_HEADER]: 'first-push' });
  assert.ok(created.id, created.text);
  const head = (session: string) =>
    fetch(`${h.server.url}${UPLOADS_PATH}/${created.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0', [SESSION_HEADER]: session } });
  assert.equal((await head('first-push')).status, 200);
  const refused = await head('second-push');
  assert.equal(refused.status, 409);
  assert.equal(refused.headers.get(ERROR_CODE_HEADER), 'transfer_locked');
  // When to come back (RFC 9110 Retry-After): within the lease, so the second push neither hammers nor waits blind.
  const after = Number(refused.headers.get('retry-after'));
  assert.ok(Number.isInteger(after) && after >= 1 && after <= 15, `Retry-After ${refused.headers.get('retry-after')}`);
});

test('a chunk size in the metadata out of range is the caller\'s mistake: 400 invalid_input, not retryable, and nothing is created', rootOnly, async (t) => {
  const h = await hostileServer(t);
  for (const chunkSize of ['0', '1000000000', '65536.5', 'lots', '']) {
    const meta = { ...metadataFor('chunks', 'snap', randomUuid()), chunkSize };
    const r = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(meta) });
    assert.equal(r.status, 400, `chunkSize ${JSON.stringify(chunkSize)}: ${r.status} ${r.text}`);
    assert.equal(r.code, 'invalid_input');
    assert.equal((JSON.parse(r.text) as { error: { retryable: boolean } }).error.retryable, false);
    assert.match(r.text, /chunkSize/);
  }
  assert.deepEqual(h.server.service.transferRecords(), []);
});
