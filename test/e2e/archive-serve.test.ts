// Archive mode end to end (docs/archive.md): a real `serve` with store: on a real RGW bucket, real btrfs on both
// sides, real sockets. Pushes go into the bucket (segments, manifest, catalog); restores come back from it, frame
// for frame as stored, into a fresh btrfs, and equal the originals. With encrypt: the bucket holds no plaintext.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createBtrfs, mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { generateKeyFile } from '../../core/crypto/key-file.ts';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import type { ObjectStore } from '../../server/archive/object-store.ts';
import type { ChainRules } from '../../server/archive/chains.ts';
import { META, UPLOADS_PATH, WIRE_FORMAT } from '../../core/protocol.ts';
import { sharedS3, type TestBucket } from '../archive/store-fixture.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { startFaultHttpProxy } from '../chaos/fault-http-proxy.ts';

const s3 = sharedS3();
const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

async function archiveServer(t: { after(fn: () => unknown): void }, bucket: TestBucket, prefix = 'archive', chains?: ChainRules) {
  const { server } = bucket;
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), ...(chains ? { chains } : {}),
    store: { endpoint: server.endpoint, bucket: bucket.name, prefix, region: server.region, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } },
  });
  t.after(() => running.close());
  return running;
}

/** The restored snapshot is the pushed one: its tree, read-only, and the pushed snapshot's UUID as Received UUID. */
async function assertRestored(original: string, restored: string): Promise<void> {
  await assertReceived(original, restored);
  const [was, now] = await Promise.all([btrfs.subvolumeShow(original), btrfs.subvolumeShow(restored)]);
  assert.equal(now.receivedUuid, was.uuid);
  assert.equal(now.readonly, true);
}

/** Every object in the bucket under the store's prefix, whole. */
async function allObjects(store: ObjectStore): Promise<Map<string, Buffer>> {
  const out = new Map<string, Buffer>();
  for await (const o of store.list('')) out.set(o.key, (await store.get(o.key))!.body);
  return out;
}

test('a full and three incrementals pushed into the archive come back, each restored into a fresh btrfs, identical; the newest alone fetches its chain', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 6, seed: 'archive-chain' });
  const bucket = await s3.bucket();
  const server = await archiveServer(t, bucket);
  const snaps: string[] = [];
  for (let i = 1; i <= 4; i++) {
    if (i > 1) {
      await mutate(pair.source, `archive-${i}`);
      await fs.writeFile(path.join(pair.source, `new-${i}`), crypto.randomBytes(700_000));
    }
    snaps.push(await pair.snapshot(`s${i}`));
    await push({ server: server.url, volume: 'v', snapshots: [snaps.at(-1)!], retries: 2 }, recordingReporter());
  }

  // The catalog in the bucket: one full, each incremental on the one before, and each transfer received.
  const api = new ServerApi({ server: server.url });
  const list = await api.snapshots('v');
  const listed = list.snapshots;
  // Each archive request ends in a stored segment: the server asks for larger PATCHes than one on btrfs.
  assert.equal(list.patchBytes, 16 * 1024 * 1024);
  const uuids = await Promise.all(snaps.map(async (s) => (await btrfs.subvolumeShow(s)).uuid));
  assert.deepEqual(listed.map((s) => [s.name, s.uuid, s.parentUuid]), [
    ['s1', uuids[0], null], ['s2', uuids[1], uuids[0]], ['s3', uuids[2], uuids[1]], ['s4', uuids[3], uuids[2]],
  ]);
  assert.deepEqual((await api.transfers()).transfers.map((x) => x.state), ['received', 'received', 'received', 'received']);
  const keys = [...(await allObjects(bucket.store())).keys()];
  assert.equal(keys.filter((k) => /^streams\/default\/v\/[0-9a-f-]+\/manifest\.json$/.test(k)).length, 4, keys.join('\n'));
  assert.ok(keys.includes('catalog/default/v.json'));

  // Restored in order into a fresh filesystem: s1 in full, then each on the one before it, as stored.
  const fresh = await createBtrfs(t, { sizeMiB: 512 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  for (const [i, original] of snaps.entries()) {
    const report = recordingReporter();
    const result = await restore({ server: server.url, volume: 'v', snapshot: `s${i + 1}`, destDir: dest, retries: 0 }, report);
    assert.equal(result.restored, true);
    assert.equal(result.parent, i === 0 ? null : `s${i}`);
    await assertRestored(original, path.join(dest, `s${i + 1}`));
  }

  // The newest alone into an empty fresh btrfs: the restore fetches its chain by itself, full then each incremental.
  const empty = await createBtrfs(t, { sizeMiB: 512 });
  const alone = path.join(empty.mountPoint, 'restored');
  await fs.mkdir(alone);
  const report = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's4', destDir: alone, retries: 0 }, report);
  assert.deepEqual([result.restored, result.parent], [true, 's3']);
  assert.match(report.notes.join('\n'), /restoring the chain from its full s1 first \(s1, s2, s3\)/);
  // No digest to check against in an archive, and no promise of one: said once a snapshot, never "restore to check it".
  assert.match(report.notes.join('\n'), /s4: every frame of its stream verified; an archive server keeps streams, not trees/);
  assert.doesNotMatch(report.notes.join('\n'), /checking the restored snapshot|restore a snapshot to check it/);
  for (const [i, original] of snaps.entries()) await assertRestored(original, path.join(alone, `s${i + 1}`));
  const again = recordingReporter();
  assert.equal((await restore({ server: server.url, volume: 'v', snapshot: 's4', destDir: alone, retries: 0 }, again)).restored, false);
  assert.match(again.notes.join('\n'), /s4 is already here/);

  // A folder that holds a member of the path (s2) starts after it: s1 and s2 are not fetched again.
  const part = await createBtrfs(t, { sizeMiB: 512 });
  const partDest = path.join(part.mountPoint, 'restored');
  await fs.mkdir(partDest);
  await restore({ server: server.url, volume: 'v', snapshot: 's2', destDir: partDest, retries: 0 }, recordingReporter());
  const s1Before = await btrfs.subvolumeShow(path.join(partDest, 's1'));
  const after = recordingReporter();
  await restore({ server: server.url, volume: 'v', snapshot: 's4', destDir: partDest, retries: 0 }, after);
  assert.match(after.notes.join('\n'), /restoring the chain after s2 \(held here\) first \(s3\)/);
  assert.equal((await btrfs.subvolumeShow(path.join(partDest, 's1'))).uuid, s1Before.uuid, 's1 was received again');
  for (const [i, original] of snaps.entries()) await assertRestored(original, path.join(partDest, `s${i + 1}`));
});

test('encrypt: on, the bucket holds no plaintext; restore with the key is identical, with another key refused (wrong_key)', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2, seed: 'archive-sealed' });
  const marker = `SNAPFERRY-MARKER-${crypto.randomBytes(12).toString('hex')}`;
  // Uncompressed (compress 0) and repeated: in a plain push the marker would be in the bucket as it is (checked below).
  await fs.writeFile(path.join(pair.source, 'secret.txt'), `${marker}\n`.repeat(2000));
  const s1 = await pair.snapshot('s1');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-archive-sealed-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const key = path.join(dir, 'archive.key');
  const otherKey = path.join(dir, 'other.key');
  await generateKeyFile(key);
  await generateKeyFile(otherKey);
  const bucket = await s3.bucket();
  const server = await archiveServer(t, bucket, 'sealed');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 2, compress: 0, encrypt: key }, recordingReporter());

  const objects = await allObjects(bucket.store('sealed'));
  assert.ok([...objects.keys()].some((k) => k.includes('/seg-')), 'the stream is in the bucket');
  for (const [k, body] of objects) assert.ok(!body.includes(marker), `${k} holds the marker in plaintext`);

  // The same check can fail: the same snapshot pushed plain (to another prefix) leaves the marker in a segment.
  const plainServer = await archiveServer(t, bucket, 'plain');
  await push({ server: plainServer.url, volume: 'v', snapshots: [s1], retries: 2, compress: 0 }, recordingReporter());
  assert.ok([...(await allObjects(bucket.store('plain'))).values()].some((b) => b.includes(marker)), 'a plain push stores the marker');

  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const wrongDest = path.join(fresh.mountPoint, 'wrong');
  await fs.mkdir(wrongDest);
  const config = path.join(dir, 'wrong.yaml');
  await fs.writeFile(config, `server: ${server.url}\nencrypt: ${otherKey}\nretries: 0\n`);
  const wrong = await execa('node', [BIN, 'restore', '--config', config, '--volume', 'v', 's1', wrongDest], { reject: false, timeout: 120_000, env: { HTTPS_PROXY: '', https_proxy: '' } });
  assert.equal(wrong.exitCode, EXIT.failed, wrong.stderr);
  assert.match(wrong.stderr, /was sealed with key [0-9a-f]+, but the key file holds key [0-9a-f]+: use the key file this archive was written with/, wrong.stderr);
  assert.deepEqual((await btrfs.subvolumeList(fresh.mountPoint)).map((s) => s.path), [], 'nothing was received');

  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, retries: 0, encrypt: key }, recordingReporter());
  assert.equal(result.restored, true);
  await assertRestored(s1, path.join(dest, 's1'));
  assert.equal(await fs.readFile(path.join(dest, 's1', 'secret.txt'), 'utf8'), `${marker}\n`.repeat(2000));
});

/** A tus creation request for `snapshot` on `parentUuid`, as a push makes it; answers the status and error code. */
async function create(url: string, volume: string, snapshot: string, uuid: string, parentUuid: string | null): Promise<[number, string | undefined]> {
  const meta: Record<string, string> = {
    [META.volume]: volume, [META.snapshot]: snapshot, [META.uuid]: uuid, [META.format]: WIRE_FORMAT, [META.chunkSize]: String(4 * 1024 * 1024),
    ...(parentUuid ? { [META.parentUuid]: parentUuid } : {}),
  };
  const res = await fetch(`${url}${UPLOADS_PATH}`, {
    method: 'POST',
    headers: {
      'Tus-Resumable': '1.0.0', 'Upload-Defer-Length': '1',
      'Upload-Metadata': Object.entries(meta).map(([k, v]) => `${k} ${Buffer.from(v).toString('base64')}`).join(','),
    },
  });
  const body = (await res.json().catch(() => null)) as { error?: { code?: string } } | null;
  return [res.status, body?.error?.code];
}

test('chains in the archive: an incremental on a missing parent or on a full chain is refused; the planner passes such a parent over', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'archive-chains' });
  const bucket = await s3.bucket();
  const server = await archiveServer(t, bucket, 'chains', { fullEveryIncrementals: 1, fullEveryDays: 30 });
  const snaps: string[] = [];
  for (let i = 1; i <= 3; i++) {
    if (i > 1) await fs.writeFile(path.join(pair.source, `new-${i}`), crypto.randomBytes(100_000));
    snaps.push(await pair.snapshot(`s${i}`));
  }
  const [u1, u2, u3] = await Promise.all(snaps.map(async (s) => (await btrfs.subvolumeShow(s)).uuid));
  await push({ server: server.url, volume: 'v', snapshots: snaps.slice(0, 2), retries: 2 }, recordingReporter());
  const api = new ServerApi({ server: server.url });
  // The chain s1 -> s2 holds one incremental, the most allowed: both are listed as such, so no client takes either as
  // a parent (a branch on s1 would grow the chain too).
  assert.deepEqual((await api.snapshots('v')).snapshots.map((s) => [s.name, s.parentUuid, s.altered?.what ?? null]), [
    ['s1', null, ['chain_full']], ['s2', u1, ['chain_full']],
  ]);
  assert.deepEqual(await create(server.url, 'v', 's3', u3!, u2!), [409, 'chain_full']);
  assert.deepEqual(await create(server.url, 'v', 's3', u3!, u1!), [409, 'chain_full']);
  assert.deepEqual(await create(server.url, 'v', 's3', u3!, crypto.randomUUID()), [409, 'parent_missing']);
  const report = recordingReporter();
  await push({ server: server.url, volume: 'v', snapshots: [snaps[2]!], retries: 2 }, report);
  // The next push is a full: a new chain, not a second incremental on s1.
  assert.deepEqual(report.started, [{ snapshot: 's3', parent: null }]);
  assert.match(report.notes.join('\n'), /chain of s2 is full .*sending it in full/);
  assert.deepEqual((await api.snapshots('v')).snapshots.map((s) => [s.name, s.parentUuid]), [['s1', null], ['s2', u1], ['s3', null]]);
});

test('a push into the archive cut midway resumes from the offset the bucket recorded, and restores identical (also after a tus DELETE of it)', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 10, seed: 'archive-cut' });
  const bucket = await s3.bucket();
  const server = await archiveServer(t, bucket, 'cut');
  // The chaos proxy cuts the line; behind it, the HTTP proxy counts the server's answers.
  const answers = await startFaultHttpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
  t.after(() => answers.close());
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: answers.port } });
  t.after(() => proxy.close());
  proxy.setRate(8 * 1024 * 1024);
  const s1 = await pair.snapshot('s1');
  proxy.cutAfter(4 * 1024 * 1024);
  const chunk = 256 * 1024;
  const report = recordingReporter();
  const { sent } = await push({ server: proxy.url, volume: 'v', snapshots: [s1], chunkSize: chunk, backoff: { baseMs: 100, maxMs: 1000 }, pollMs: 100, stallMs: 5000 }, report);
  assert.equal(proxy.stats().cuts, 1);
  const transfer = sent[0]!.transfer;
  assert.equal(transfer.state, 'received');
  assert.ok(transfer.wireOffset > 4 * 1024 * 1024, 'the cut fell inside the upload');
  // What crossed: the stream once, plus what the cut lost (the frame in flight and what sat in socket buffers, as
  // test/e2e/resume-cuts.test.ts allows), plus requests; a push that started over would add the 4 MiB before the cut.
  // The HEAD after the cut waits for the cut request to record what it verified, so the PATCH that follows starts
  // where the bucket stands. Before, the HEAD answered the offset before those frames, and the next PATCH's body
  // crossed until an offset_mismatch refused it: 1.5 to 3 MB more.
  const crossed = proxy.stats().upstreamBytes;
  const counts = answers.counts();
  t.diagnostic(`${crossed} bytes crossed for a ${transfer.wireOffset}-byte stream with one cut; answers ${JSON.stringify(counts)}`);
  assert.ok(crossed < transfer.wireOffset + chunk + 512 * 1024 + 64 * 1024, `${crossed} bytes crossed: more than the stream and one cut's loss`);
  assert.equal(counts.POST, 1, 'one upload, resumed');
  assert.deepEqual(Object.keys(counts).filter((k) => /^PATCH 409/.test(k)), [], JSON.stringify(counts));

  // A tus termination of the finished upload leaves the stored stream alone: its segments are what the manifest names.
  const terminated = await fetch(`${server.url}${UPLOADS_PATH}/${transfer.id}`, { method: 'DELETE', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(terminated.status, 204);

  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, chunkSize: chunk, retries: 0 }, recordingReporter());
  await assertRestored(s1, path.join(dest, 's1'));
});
