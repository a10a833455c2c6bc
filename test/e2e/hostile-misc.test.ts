/**
 * The smaller faults of issue 17 item 5, each against a real server on real btrfs: the upload URL a creation hands
 * out, where a stream's own symlinks can make btrfs receive write, and the open-upload slot of a stream refused at
 * its first frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { ChildProcesses, freePort } from './processes.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { authHeaders } from '../../client/http/token.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import {
  CHUNK, create, createAs, encodeMetadata, hostileServer, listTree, metadataFor, patch, sendAs, settled, twoClients, uploadStream,
} from './hostile-client.ts';

const data = Buffer.from('harmless file\n');
const CANARY = `misc-canary-${process.pid}`;

function full(uuid: string): SendStreamBuilder {
  return new SendStreamBuilder().subvol('snap', uuid);
}

/** A creation request with `headers`, for a fresh snapshot of volume `v`. */
function creationWith(url: string, headers: Record<string, string>) {
  return create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', randomUuid())), ...headers });
}

// --- Location ------------------------------------------------------------------------------------------------------

test("Location never carries a path or query from the caller's X-Forwarded-Host / Forwarded: a host that is not host[:port] is a 400, and nothing is created", rootOnly, async (t) => {
  const h = await hostileServer(t, { behindProxy: true });
  const url = h.server.url;
  const hostile: Record<string, string>[] = [
    { 'X-Forwarded-Host': 'evil.example/phish?x=', 'X-Forwarded-Proto': 'https' },
    { 'X-Forwarded-Host': 'evil.example?x=' },
    { 'X-Forwarded-Host': 'evil.example#x' },
    { 'X-Forwarded-Host': 'user@evil.example' },
    { 'X-Forwarded-Host': 'evil.example:99999' },
    { 'X-Forwarded-Host': 'evil.example\\phish' },
    { Forwarded: 'host="evil.example/phish?x=";proto=https' },
  ];
  for (const headers of hostile) {
    const r = await creationWith(url, headers);
    assert.equal(r.status, 400, `${JSON.stringify(headers)}: ${r.status} ${r.headers.get('location')} ${r.text}`);
    assert.equal(r.code, 'invalid_input', r.text);
    assert.equal(JSON.parse(r.text).error.retryable, false);
    assert.match(r.text, /publicUrl/, 'the answer says how to fix it');
    assert.equal(r.headers.get('location'), null);
  }
  assert.deepEqual(h.server.service.transferRecords(), [], 'no refused creation left a transfer');

  // A host[:port] a proxy forwards is taken as it is: that is what keeps clients behind nginx working.
  for (const [host, expected] of [['backup.example.org:8443', 'https://backup.example.org:8443'], ['[::1]:8080', 'https://[::1]:8080'], ['Backup.Example.org', 'https://Backup.Example.org']]) {
    const ok = await creationWith(url, { 'X-Forwarded-Host': host!, 'X-Forwarded-Proto': 'https' });
    assert.equal(ok.status, 201, ok.text);
    assert.equal(ok.headers.get('location'), `${expected}${UPLOADS_PATH}/${ok.id}`);
    await h.server.service.abort('default' as never, ok.id!);
  }
});

test('with publicUrl set, Location is publicUrl (its path prefix kept) whatever Host or X-Forwarded-Host the caller sends', rootOnly, async (t) => {
  const h = await hostileServer(t, { behindProxy: true, publicUrl: 'https://backup.example.org/snapferry/' });
  for (const headers of [{} as Record<string, string>, { 'X-Forwarded-Host': 'evil.example/phish?x=', 'X-Forwarded-Proto': 'http' }, { Forwarded: 'host=evil.example' }]) {
    const r = await creationWith(h.server.url, headers);
    assert.equal(r.status, 201, r.text);
    assert.equal(r.headers.get('location'), `https://backup.example.org/snapferry${UPLOADS_PATH}/${r.id}`);
    // The upload answers where Location says, minus the prefix the proxy strips.
    const head = await fetch(`${h.server.url}${UPLOADS_PATH}/${r.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200);
    await h.server.service.abort('default' as never, r.id!);
  }
});

// (What a UUID another client holds gives away: nothing, it is received in the caller's own namespace; see
// hostile-uuid.test.ts.)

// --- a stream's own symlinks -----------------------------------------------------------------------------------------

test("a stream that writes through its own symlinks beside its subvolume is refused before btrfs receive acts on it; what was there before stays", rootOnly, async (t) => {
  const h = await hostileServer(t);
  const escapes = ['/', '..', '../..', '../../../../../../../..'];
  for (const [i, target] of escapes.entries()) {
    for (const fail of [false, true]) {
      const volume = `sym${i}${fail ? 'f' : 'r'}`;
      // What was in the folder before the receive is not the receive's: it stays.
      await fs.mkdir(h.volumeDir(volume), { recursive: true });
      await fs.writeFile(path.join(h.volumeDir(volume), 'admin-note'), 'left here by an admin');
      const uuid = randomUuid();
      // Frame 0 (checked as it arrives) holds only a harmless file; the write through `up` comes after it.
      const b = padded(full(uuid), 'pad').symlink('up', target).mkfileAt(`up/${CANARY}`).write(`up/${CANARY}`, data);
      // A refused command two chunks later: the transfer fails once btrfs receive has written through `up`.
      if (fail) padded(b, 'pad2').file(`../${CANARY}-x`, data);
      const { id, patched } = await uploadStream(h.server.url, metadataFor(volume, 'snap', uuid), b.end().build());
      assert.equal(patched.status, 204, patched.text);
      const got = await settled(h, id);
      // The policy refuses a path through a symlink (core/wire/sendstream-symlinks.ts); the folder's cleanup stays
      // behind it (test/btrfs/checked-receive.test.ts, and the kill -9 tests below).
      assert.equal(got.state, 'failed', `${target}: ${got.error?.message}`);
      assert.match(got.error?.message ?? '', /"up" is a symlink/);
      assert.deepEqual((await fs.readdir(h.volumeDir(volume))).sort(), ['admin-note'], `${volume}: nothing is added`);
      const stray = [...(await listTree(h.mount))].filter((p) => p.includes(CANARY));
      assert.deepEqual(stray, [], `${volume} (symlink to ${target}): nothing written through it is left`);
    }
  }
});

test("an incremental stream that writes through a symlink its parent snapshot holds is refused; nothing reaches the volume's folder", rootOnly, async (t) => {
  const h = await hostileServer(t);
  const volume = 'parentlink';
  const baseUuid = randomUuid();
  // The parent is an ordinary snapshot with a symlink that, from the new subvolume, names the volume's folder.
  const base = await uploadStream(h.server.url, metadataFor(volume, 'base', baseUuid), full(baseUuid).symlink('up', '..').end().build());
  assert.equal(base.patched.status, 204, base.patched.text);
  assert.equal((await settled(h, base.id)).state, 'received');
  const uuid = randomUuid();
  const b = padded(new SendStreamBuilder().snapshot('snap', uuid, baseUuid), 'pad').mkfileAt(`up/${CANARY}`).write(`up/${CANARY}`, data);
  const { id, patched } = await uploadStream(h.server.url, metadataFor(volume, 'snap', uuid, baseUuid), b.end().build());
  assert.equal(patched.status, 204, patched.text);
  const got = await settled(h, id);
  assert.equal(got.state, 'failed', got.error?.message);
  assert.match(got.error?.message ?? '', /"up" is a symlink/);
  assert.deepEqual((await fs.readdir(h.volumeDir(volume))).sort(), ['base'], 'nothing is added beside the parent');
  assert.deepEqual([...(await listTree(h.mount))].filter((p) => p.includes(CANARY)), [], 'nothing written through the symlink is left');
});

for (const remount of [false, true]) {
  test(`the server killed with kill -9 while a receive runs beside an entry that appeared in its folder${remount ? ', and its filesystem mounted again (a power cut)' : ''}: the restart deletes what appeared, keeps what was there, and the upload goes on`, { ...rootOnly, timeout: 120_000 }, async (t) => {
    const children = new ChildProcesses(t);
    const fsx = await createBtrfs(t, { sizeMiB: 256 });
    const root = path.join(fsx.mountPoint, 'root');
    const port = await freePort();
    let server = await children.serve({ root, port });
    const volumeDir = path.join(root, 'volumes', 'default', 'v');
    // An admin's file and subvolume, there before the receive: not the stream's, whatever happens to it.
    await fs.mkdir(volumeDir, { recursive: true });
    await fs.writeFile(path.join(volumeDir, 'admin-note'), 'left here by an admin');
    await btrfs.createSubvolume(path.join(volumeDir, 'admin-sub'));

    // No stream can write beside its subvolume any more (paths through symlinks are refused, the parent's too: the
    // test above), so this is the cleanup behind that defence, tested as such: an entry appears in the volume's
    // folder while the receive runs, as a receive that wrote through a link would have made it. The stream's end
    // (incompressible, so that it takes frames of its own) is held back: the receive is still running at the kill.
    const baseUuid = randomUuid();
    const base = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('v', 'base', baseUuid)) });
    assert.equal(base.status, 201, base.text);
    const baseFramed = await frameStream(full(baseUuid).end().build(), CHUNK);
    assert.equal((await patch(server.url, base.id!, 0, baseFramed, { 'Upload-Length': String(baseFramed.length) })).status, 204);
    const baseEnd = Date.now() + 30_000;
    while (((await fetch(`${server.url}/v1/transfers/${base.id!}`).then((r) => r.json())) as { state: string }).state !== 'received') {
      if (Date.now() > baseEnd) assert.fail(`base was not received within 30 s:\n${server.stderr}`);
      await sleep(20);
    }
    const uuid = randomUuid();
    const b = padded(new SendStreamBuilder().snapshot('snap', uuid, baseUuid), 'pad');
    b.file('tail', randomBytes(32768));
    for (let at = 32768; at < 4 * CHUNK; at += 32768) b.write('tail', randomBytes(32768), at);
    const framed = await frameStream(b.end().build(), CHUNK);
    const created = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', uuid, baseUuid)) });
    assert.equal(created.status, 201, created.text);
    const id = created.id!;
    const held = framed.length - 2 * CHUNK;
    const first = await patch(server.url, id, 0, framed.subarray(0, held), { 'Upload-Length': String(framed.length) });
    assert.equal(first.status, 204, first.text);

    const canary = path.join(volumeDir, CANARY);
    const end = Date.now() + 30_000;
    while (((await fetch(`${server.url}/v1/transfers/${id}`).then((r) => r.json())) as { rawReceived: number }).rawReceived === 0) {
      if (Date.now() > end) assert.fail(`the receive took no byte within 30 s:\n${server.stderr}`);
      await sleep(20);
    }
    await fs.writeFile(canary, data);
    assert.equal((await server.kill9()).signal, 'SIGKILL');
    assert.ok(await server.groupGone(10_000), 'btrfs receive still runs 10 s after the server died');
    assert.ok(await fs.lstat(canary), 'the kill came while the canary was there');
    assert.ok(!(await fs.readdir(volumeDir)).includes('snap'), 'the kill came before the receive finished');
    if (remount) await mountAgain(t, fsx.device, fsx.mountPoint);

    server = await children.serve({ root, port });

    const head = await fetch(`${server.url}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
    assert.equal(head.status, 200);
    const offset = Number(head.headers.get('upload-offset'));
    const rest = await patch(server.url, id, offset, framed.subarray(offset));
    assert.equal(rest.status, 204, rest.text);
    const done = Date.now() + 60_000;
    let state: string | undefined;
    for (;;) {
      const got = (await fetch(`${server.url}/v1/transfers/${id}`).then((r) => r.json())) as { state: string; error: { message: string } | null };
      state = got.state;
      if (!['uploading', 'receiving', 'verifying'].includes(state) || Date.now() > done) {
        assert.equal(state, 'received', got.error?.message);
        break;
      }
      await sleep(50);
    }
    assert.deepEqual((await fs.readdir(volumeDir)).sort(), ['admin-note', 'admin-sub', 'base', 'snap'], 'what was there stays; only the snapshot is added');
    assert.equal(await fs.readFile(path.join(volumeDir, 'admin-note'), 'utf8'), 'left here by an admin');
    assert.ok(await btrfs.isSubvolume(path.join(volumeDir, 'admin-sub')), "the admin's subvolume is still one");
    assert.deepEqual([...(await listTree(fsx.mountPoint))].filter((p) => p.includes(CANARY)), [], 'what appeared during the receive is gone');
    assert.deepEqual(await fs.readdir(path.join(root, 'receiving')), [], 'no record is left');
    // The start deleted the canary before any receive ran: the log says so, and names nothing else.
    const removedLine = server.stderr.split('\n').find((l) => l.includes('cut by a crash wrote'));
    assert.deepEqual(removedLine && (JSON.parse(removedLine) as { removed: string[] }).removed, [CANARY], server.stderr);
  });
}

/**
 * Unmounts the filesystem and mounts it again, as a reboot after a power cut would, with new anonymous device
 * numbers: tmpfs mounts take free ones, the lowest first, until one holds the number the folders had.
 */
async function mountAgain(t: { after(fn: () => Promise<void>): void }, device: string, mountPoint: string): Promise<void> {
  const before = (await fs.lstat(path.join(mountPoint, 'root'))).dev;
  await execa('umount', [mountPoint]);
  const takers: string[] = [];
  t.after(async () => {
    for (const dir of takers) {
      await execa('umount', [dir], { reject: false });
      await fs.rm(dir, { recursive: true, force: true });
    }
  });
  for (let i = 0; i < 64; i++) {
    const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-dev-taker-'));
    takers.push(dir);
    await execa('mount', ['-t', 'tmpfs', 'none', dir]);
    if ((await fs.stat(dir)).dev === before) break;
  }
  await execa('mount', ['-t', 'btrfs', device, mountPoint]);
  assert.notEqual((await fs.lstat(path.join(mountPoint, 'root'))).dev, before, 'the mount gave the folders a new device number');
}

test("the chroot holds the clone sources: a symlink in the client's own earlier snapshot cannot lead a clone to another client's files", rootOnly, async (t) => {
  // Why btrfs receive runs chrooted to the volume folder and not to a folder of the transfer's own: clone sources are
  // opened from outside the chroot, and `..` stops at the chroot only on a path that passes through it.
  const keys = await twoClients(t);
  const h = await hostileServer(t, { tokensFile: keys.file });
  const secret = Buffer.alloc(4096, 0x5a);
  const a = randomUuid();
  const alice = await createAs(h, keys.alice, 'home', a);
  assert.equal((await sendAs(h, keys.alice, alice.id!, full(a).file('secret', secret).end().build())).status, 204);
  assert.equal((await settled(h, alice.id!)).state, 'received');

  // Bob's first snapshot: a symlink that, from volumes/bob/home/snap, names Alice's snapshot.
  const b1 = randomUuid();
  const first = await createAs(h, keys.bob, 'home', b1);
  assert.equal((await sendAs(h, keys.bob, first.id!, full(b1).symlink('l', '../../../alice/home/snap').end().build())).status, 204);
  assert.equal((await settled(h, first.id!)).state, 'received');

  // His incremental clones from his own snapshot (allowed), by a path without `..` (allowed), through the symlink.
  const b2 = randomUuid();
  const meta = { ...metadataFor('home', 'snap2', b2), parentUuid: b1 };
  const second = await create(h.server.url, { ...authHeaders(keys.bob), 'Upload-Metadata': encodeMetadata(meta) });
  assert.equal(second.status, 201, second.text);
  const stream = new SendStreamBuilder().snapshot('snap2', b2, b1).file('f', Buffer.alloc(4096, 1)).clone('f', 0, 4096, b1, 'l/secret').end().build();
  assert.equal((await sendAs(h, keys.bob, second.id!, stream)).status, 204);
  const end = Date.now() + 30_000;
  let state: string | undefined;
  do {
    await h.server.service.idle();
    state = h.server.service.transferRecord(second.id!)?.state;
    if (state !== 'uploading' && state !== 'receiving') break;
    await new Promise((r) => setTimeout(r, 100));
  } while (Date.now() < end);
  for (const p of await listTree(path.join(h.root, 'volumes', 'bob'))) {
    if (p.endsWith('/')) continue;
    const st = await fs.lstat(path.join(h.root, 'volumes', 'bob', p));
    if (st.isFile()) assert.ok(!(await fs.readFile(path.join(h.root, 'volumes', 'bob', p))).equals(secret), `${p} holds Alice's bytes`);
  }
  assert.notEqual(state, 'received', "Bob's stream, whose clone source leads out of his volume, could not be applied");
});

/** Appends a file of three chunks' worth, written 32 KiB at a time (a v1 TLV holds at most 64 KiB). */
function padded(b: SendStreamBuilder, name: string): SendStreamBuilder {
  b.file(name, Buffer.alloc(32768, 1));
  for (let at = 32768; at < 3 * CHUNK; at += 32768) b.write(name, Buffer.alloc(32768, 1), at);
  return b;
}

// --- a stream refused at its first frame -----------------------------------------------------------------------------

test('a stream refused at its first frame (422) fails its transfer with the reason, which frees its open-upload slot for the next push', rootOnly, async (t) => {
  const h = await hostileServer(t, { limits: { maxOpenUploads: 1 } });
  const url = h.server.url;
  const cases = [
    { code: 'stream_metadata_mismatch', raw: () => full(randomUuid()).end().build() },
    { code: 'sendstream_bad_magic', raw: () => Buffer.from('#!/bin/sh\n'.repeat(100)) },
  ];
  for (const c of cases) {
    const refused = await uploadStream(url, metadataFor('home', 'snap', randomUuid()), c.raw());
    assert.equal(refused.patched.status, 422, refused.patched.text);
    assert.equal(refused.patched.code, c.code);
    const t1 = h.server.service.transferRecord(refused.id);
    assert.equal(t1?.state, 'failed', `${c.code}: the transfer is over`);
    assert.equal(t1?.error?.code, c.code);
    // Another PATCH of it gets the reason, not a fresh verdict.
    const again = await patch(url, refused.id, 0, Buffer.alloc(16));
    assert.equal(again.code, c.code, again.text);
  }
  // The next push of the volume starts at once: no slot and no volume held by the refused ones.
  const uuid = randomUuid();
  const next = await uploadStream(url, metadataFor('home', 'snap', uuid), full(uuid).file('f', data).end().build());
  assert.equal(next.created.status, 201, next.created.text);
  assert.equal(next.patched.status, 204, next.patched.text);
  assert.equal((await settled(h, next.id)).state, 'received');
});
