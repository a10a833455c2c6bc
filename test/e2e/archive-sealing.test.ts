// Sealing and chains in the archive (core/sealing.ts, server/archive/stream-sealing.ts), end to end: a real `serve`
// with store: on a real RGW bucket, real btrfs on both sides. Turning encrypt: on after plain pushes (the tester's
// case), off again, or changing the key starts a new chain, so that every chain restores in one run with one config;
// the archive lists each snapshot's sealing, reads it from the stream for entries stored before it was recorded, and
// refuses an incremental sealed otherwise than its parent at its frame 0. A restore whose key cannot open a chain is
// refused before its download, from the listing's sealedBy, or at frame 0 where the listing does not say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { ServerApi } from '../../client/http/api.ts';
import { generateKeyFile, readKeyFile } from '../../core/crypto/key-file.ts';
import { encodeFrameHeader, sealFrame, streamIdentity } from '../../core/wire/index.ts';
import { META, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { archiveServer, sharedS3 } from '../archive/store-fixture.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { SPOOL_PREFIX } from '../../client/restore/spool.ts';
import { runAt } from './run-helpers.ts';

const s3 = sharedS3();
const CHUNK = 4 * 1024 * 1024;

async function keyFiles(t: { after(fn: () => unknown): void }): Promise<{ key: string; otherKey: string }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-archive-sealing-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'archive.key');
  const otherKey = path.join(dir, 'other.key');
  await generateKeyFile(key);
  await generateKeyFile(otherKey);
  return { key, otherKey };
}

/** A fresh btrfs folder to restore into. */
async function freshDest(t: { after(fn: () => unknown): void }): Promise<string> {
  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  return dest;
}

test('encrypt: turned on after plain pushes, off again, then another key: each starts a new chain, and each chain restores in one run with one config', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'archive-sealing' });
  const { key, otherKey } = await keyFiles(t);
  const keyId = (await readKeyFile(key)).id.toString('hex');
  const otherId = (await readKeyFile(otherKey)).id.toString('hex');
  const bucket = await s3.bucket();
  const server = await archiveServer(t, bucket, 'sealing');
  const snaps: string[] = [];
  const pushNext = async (encrypt: string | undefined) => {
    await fs.writeFile(path.join(pair.source, `new-${snaps.length + 1}`), crypto.randomBytes(200_000));
    snaps.push(await pair.snapshot(`s${snaps.length + 1}`));
    const report = recordingReporter();
    await push({ server: server.url, volume: 'v', snapshots: [snaps.at(-1)!], retries: 2, ...(encrypt ? { encrypt } : {}) }, report);
    return report;
  };

  assert.deepEqual((await pushNext(undefined)).started, [{ snapshot: 's1', parent: null }]);
  // The tester's case: encrypt: on. Before, s2 went as a sealed incremental on the plain s1.
  const on = await pushNext(key);
  assert.deepEqual(on.started, [{ snapshot: 's2', parent: null }]);
  assert.match(on.notes.join('\n'), new RegExp(`this push is sealed under key ${keyId} and the server's s1 is plain .*sending it in full instead`));
  const next = await pushNext(key);
  assert.deepEqual(next.started, [{ snapshot: 's3', parent: 's2' }], 'the sealed chain goes on');
  assert.deepEqual(next.notes.filter((n) => /sealed|plain/.test(n)), [], 'the note is said once, when the chain changes');
  // Off again: not on the sealed s3, but on the plain s1, the newest of its own sealing.
  const off = await pushNext(undefined);
  assert.deepEqual(off.started, [{ snapshot: 's4', parent: 's1' }]);
  assert.match(off.notes.join('\n'), /this push is plain \(no encrypt:\) and the server's s3 is sealed under key .*using s1 as parent instead/);
  // Another key: nothing is sealed under it yet, so a full.
  assert.deepEqual((await pushNext(otherKey)).started, [{ snapshot: 's5', parent: null }]);

  const api = new ServerApi({ server: server.url });
  const uuids = await Promise.all(snaps.map(async (s) => (await btrfs.subvolumeShow(s)).uuid));
  assert.deepEqual((await api.snapshots('v')).snapshots.map((s) => [s.name, s.parentUuid, s.sealedBy]), [
    ['s1', null, null], ['s2', null, keyId], ['s3', uuids[1], keyId], ['s4', uuids[0], null], ['s5', null, otherId],
  ]);

  // Each chain in one run with one config, into a btrfs that holds none of it: the restore fetches the chain.
  const sealedDest = await freshDest(t);
  const sealed = await restore({ server: server.url, volume: 'v', snapshot: 's3', destDir: sealedDest, retries: 0, encrypt: key }, recordingReporter());
  assert.deepEqual([sealed.restored, sealed.parent], [true, 's2']);
  for (const i of [1, 2]) await assertReceived(snaps[i]!, path.join(sealedDest, `s${i + 1}`));
  const plainDest = await freshDest(t);
  const plain = await restore({ server: server.url, volume: 'v', snapshot: 's4', destDir: plainDest, retries: 0 }, recordingReporter());
  assert.deepEqual([plain.restored, plain.parent], [true, 's1']);
  for (const i of [0, 3]) await assertReceived(snaps[i]!, path.join(plainDest, `s${i + 1}`));
});

test("prune (run's, with the config's encrypt:) keeps the sealed parent the next push takes, not the newest plain snapshot", { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'archive-sealing-prune' });
  const { key } = await keyFiles(t);
  const bucket = await s3.bucket();
  const server = await archiveServer(t, bucket, 'sealing-prune');
  const names = [1, 2, 3, 4, 5].map((d) => `v.2026120${d}T000000Z`);
  const paths: string[] = [];
  for (const name of names) {
    await fs.writeFile(path.join(pair.source, name), crypto.randomBytes(100_000));
    paths.push(await pair.snapshot(name));
  }
  await push({ server: server.url, volume: 'v', snapshots: paths.slice(0, 2), retries: 2 }, recordingReporter());
  const sealed = recordingReporter();
  await push({ server: server.url, volume: 'v', snapshots: paths.slice(2, 4), retries: 2, encrypt: key }, sealed);
  assert.deepEqual(sealed.started, [{ snapshot: names[2], parent: null }, { snapshot: names[3], parent: names[2] }]);

  // The fifth is new here. Before, prune kept the newest plain snapshot (the second) as the next parent and deleted
  // the fourth, which the next sealed push needed: a full send again.
  const run = runAt(path.join(pair.client.mountPoint, `run-${process.pid}.lock`));
  const config = { server: server.url, volumes: { v: { source: pair.source, snapshotDir: pair.snaps, retention: { last: 1 } } } };
  const pruned = await run(config, new Date().toISOString(), { steps: ['prune'], push: { encrypt: key } });
  assert.equal(pruned.exitCode, 0, [...pruned.lines, ...pruned.notes].join('\n'));
  assert.deepEqual((await fs.readdir(pair.snaps)).sort(), [names[3], names[4]]);
  const next = recordingReporter();
  await push({ server: server.url, volume: 'v', snapshots: [paths[4]!], retries: 2, encrypt: key }, next);
  assert.deepEqual(next.started, [{ snapshot: names[4], parent: names[3] }]);
});

test('entries stored before sealings were recorded are listed with the sealing read from their stream; a sealed incremental on a plain parent is refused at frame 0 (sealing_mismatch) and its upload ended, failed', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'archive-sealing-old' });
  const { key } = await keyFiles(t);
  const bucket = await s3.bucket();
  const first = await archiveServer(t, bucket, 'old');
  const s1 = await pair.snapshot('s1');
  await fs.writeFile(path.join(pair.source, 'new-2'), crypto.randomBytes(200_000));
  const s2 = await pair.snapshot('s2');
  await push({ server: first.url, volume: 'v', snapshots: [s1], retries: 2 }, recordingReporter());
  await push({ server: first.url, volume: 'v', snapshots: [s2], retries: 2, encrypt: key }, recordingReporter());
  const keyId = (await readKeyFile(key)).id.toString('hex');

  // The catalog as a server before this change wrote it: no sealedBy. Another instance (nothing read yet) reads it.
  const store = bucket.store('old');
  const catalogKey = 'catalog/default/v.json';
  const got = (await store.get(catalogKey))!;
  const catalog = JSON.parse(got.body.toString('utf8')) as { streams: { sealedBy?: unknown }[] };
  assert.deepEqual(catalog.streams.map((s) => s.sealedBy), [null, keyId], 'recorded when stored');
  for (const s of catalog.streams) delete s.sealedBy;
  assert.ok(await store.swap(catalogKey, Buffer.from(JSON.stringify(catalog)), got.etag));
  const second = await archiveServer(t, bucket, 'old');
  const api = new ServerApi({ server: second.url });
  assert.deepEqual((await api.snapshots('v')).snapshots.map((s) => [s.name, s.sealedBy]), [['s1', null], ['s2', keyId]]);

  // What an older client would send: s3 sealed, on the plain s1. Refused at its frame 0, before anything is stored.
  const [u1, u3] = [(await btrfs.subvolumeShow(s1)).uuid, crypto.randomUUID()];
  const meta: Record<string, string> = {
    [META.volume]: 'v', [META.snapshot]: 's3', [META.uuid]: u3, [META.parentUuid]: u1, [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK),
  };
  const created = await fetch(`${second.url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1',
      'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(','),
    },
  });
  assert.equal(created.status, 201, await created.text());
  const location = new URL(created.headers.get('location')!, second.url).toString();
  const payload = crypto.randomBytes(1000);
  const sealed = sealFrame({ key: await readKeyFile(key), stream: streamIdentity(u3, u1) }, 0, { codec: 'raw', payload });
  const header = encodeFrameHeader({
    kind: 'data', codec: 'raw', sealed: true, chunkSize: CHUNK, rawLength: payload.length, payloadLength: sealed.payload.length, index: 0, rawOffset: 0, rawHash: sealed.rawHash,
  });
  const patched = await fetch(location, {
    method: 'PATCH',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: Buffer.concat([header, sealed.payload]),
  });
  const body = (await patched.json()) as { error: { code: string; message: string; retryable: boolean } };
  assert.equal(patched.status, 409, JSON.stringify(body));
  assert.equal(body.error.code, 'sealing_mismatch');
  assert.equal(body.error.retryable, false);
  assert.match(body.error.message, new RegExp(`s3 is sealed under key ${keyId}, but its parent s1 in the archive is plain`));
  const id = location.split('/').at(-1)!;
  // Ended before the refusal was answered, failed with it, as a btrfs server fails a stream refused at frame 0.
  const ended = (await api.transfers()).transfers.find((x) => x.id === id);
  assert.deepEqual([ended?.state, ended?.error?.code], ['failed', 'sealing_mismatch'], 'the refused upload is ended');
  assert.deepEqual((await api.snapshots('v')).snapshots.map((s) => s.name), ['s1', 's2']);
});

/**
 * A proxy in front of the archive that counts the restore streams asked for and the bytes it passed of them, and with
 * `hideSealedBy` lists the snapshots without sealedBy, as an archive older than that field does.
 */
async function listingProxy(t: { after(fn: () => unknown): void }, target: string) {
  const seen = { streams: 0, streamBytes: 0, hideSealedBy: false };
  const server = http.createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url!, target);
      const headers = Object.fromEntries(Object.entries(req.headers).filter(([k]) => k !== 'host' && k !== 'connection')) as Record<string, string>;
      const up = await fetch(url, { method: req.method ?? 'GET', headers });
      const out: Record<string, string> = {};
      up.headers.forEach((v, k) => void (['content-length', 'content-encoding', 'transfer-encoding', 'connection'].includes(k) || (out[k] = v)));
      if (seen.hideSealedBy && url.pathname.endsWith('/snapshots') && up.ok) {
        const list = (await up.json()) as { snapshots: Record<string, unknown>[] };
        for (const s of list.snapshots) delete s.sealedBy;
        res.writeHead(up.status, out).end(JSON.stringify(list));
        return;
      }
      const isStream = url.pathname.endsWith('/stream');
      if (isStream) seen.streams++;
      res.writeHead(up.status, out);
      if (up.body === null) return void res.end();
      for await (const chunk of up.body as AsyncIterable<Uint8Array>) {
        if (res.destroyed) break;
        if (isStream) seen.streamBytes += chunk.length;
        if (!res.write(chunk)) {
          await new Promise<void>((resolve) => {
            const on = () => (res.off('drain', on).off('close', on), resolve());
            res.on('drain', on).on('close', on);
          });
        }
      }
      res.end();
    })().catch(() => res.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  t.after(() => server.closeAllConnections());
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen };
}

test('a sealed chain restored with another key or with none is refused before its download (listed sealedBy) or at its frame 0 (not listed), with the receive\'s code and words; the right key then restores it', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 3, seed: 'archive-sealing-early' });
  const { key, otherKey } = await keyFiles(t);
  const [keyId, otherId] = [(await readKeyFile(key)).id.toString('hex'), (await readKeyFile(otherKey)).id.toString('hex')];
  const bucket = await s3.bucket();
  const archive = await archiveServer(t, bucket, 'early');
  // Small frames, so that a frame is a small part of the stream: the whole stream is many of them.
  const chunkSize = 256 * 1024;
  const s1 = await pair.snapshot('s1');
  await fs.writeFile(path.join(pair.source, 'new-2'), crypto.randomBytes(300_000));
  const s2 = await pair.snapshot('s2');
  await push({ server: archive.url, volume: 'v', snapshots: [s1, s2], retries: 2, encrypt: key, chunkSize }, recordingReporter());
  const proxy = await listingProxy(t, archive.url);
  const dest = await freshDest(t);
  const spoolDirs = async () => (await fs.readdir(dest)).filter((n) => n.startsWith(SPOOL_PREFIX));

  // What the receive says at frame 0 once the whole stream is in (before, after downloading all of s1): the same code,
  // the same words, the same exit code.
  const refusals = [
    { encrypt: otherKey, code: 'wrong_key', words: `sealed frame 0 was sealed with key ${keyId}, but the key file holds key ${otherId}: use the key file this archive was written with` },
    { encrypt: undefined, code: 'key_required', words: 'frame 0 is sealed (client-side encryption) and no key is configured: set encrypt: in the client config to the key file it was sealed with' },
  ];
  const refused = async ({ encrypt, code, words }: (typeof refusals)[number]) => {
    const report = recordingReporter();
    const err = await restore({ server: proxy.url, volume: 'v', snapshot: 's2', destDir: dest, retries: 0, chunkSize, ...(encrypt ? { encrypt } : {}) }, report).then(
      () => assert.fail('the restore went through'),
      (e: unknown) => e as Error & { code: string },
    );
    assert.equal(err.code, code, String(err));
    assert.ok(err.message.startsWith(words), err.message);
    assert.equal(exitCodeFor(err), EXIT.failed);
    assert.doesNotMatch(report.notes.join('\n'), /downloaded and verified/, 'nothing went to the receive');
  };

  // The listing says how s1 and s2 are sealed: refused before a byte of either is asked for.
  for (const refusal of refusals) await refused(refusal);
  assert.deepEqual(proxy.seen, { streams: 0, streamBytes: 0, hideSealedBy: false }, 'no stream was asked for');
  assert.deepEqual(await spoolDirs(), [], 'no spool');

  // An archive that does not list sealedBy: frame 0's seal header says it, and the rest of the stream is not read.
  proxy.seen.hideSealedBy = true;
  for (const refusal of refusals) {
    await refused(refusal);
    // The refused bytes are neither verified nor kept, so the spool held nothing and went: DEST_DIR as it was found.
    assert.deepEqual(await spoolDirs(), [], 'no spool left by a refusal at frame 0');
  }
  t.diagnostic(`frame-0 refusals: ${proxy.seen.streams} stream requests, ${proxy.seen.streamBytes} bytes passed the proxy (socket buffers included)`);
  assert.ok(proxy.seen.streams <= 2, `${proxy.seen.streams} stream requests`);
  assert.deepEqual((await btrfs.subvolumeList(path.dirname(dest))).map((s) => s.path), [], 'nothing was received');

  // With the right key the same folder restores the chain: what the refusals left there does not stand in its way.
  const done = await restore({ server: proxy.url, volume: 'v', snapshot: 's2', destDir: dest, retries: 0, chunkSize, encrypt: key }, recordingReporter());
  assert.deepEqual([done.restored, done.parent], [true, 's1']);
  await assertReceived(s1, path.join(dest, 's1'));
  await assertReceived(s2, path.join(dest, 's2'));
  assert.deepEqual(await spoolDirs(), []);
});
