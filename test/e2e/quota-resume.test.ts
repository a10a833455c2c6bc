/**
 * A push of a stream larger than the client's quota is refused once a quota's worth has crossed the line (push defers
 * its length). What crossed stays on the server, an unfinished upload counted against the quota: once the admin raises
 * limits.quota and restarts serve, the next push resumes it from the server's offset and sends only the rest. Before,
 * the refusal failed the transfer and deleted its spool, and the next push sent everything again from byte 0: days
 * of a slow line's upload thrown away. Real btrfs, real servers, the bytes that cross counted by a proxy.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';
import { createSubvolume } from '../../core/btrfs/index.ts';
import { forwardingProxy } from '../fixtures/forwarding-proxy.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { SnapferryError } from '../../core/errors.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import type { RunningServer } from '../../server/serve.ts';
import { assertReceived, createPair, framedLength, recordingReporter, until } from './harness.ts';
import { create, encodeMetadata, metadataFor } from './hostile-client.ts';

const CHUNK = 64 * 1024;

/** A proxy in front of whichever server `current()` is, counting the PATCH body bytes that cross it. */
/**
 * A proxy that counts the PATCH body bytes it takes, request by request: a refused PATCH's last bytes may reach it
 * only once its server has closed (the proxy stops reading a body its server no longer reads), after a later push
 * has begun, and must not count as that push's.
 */
async function countingProxy(t: { after(fn: () => unknown): void }, current: () => Pick<RunningServer, 'url'>): Promise<{ url: string; patched: (fromRequest?: number) => number; requests: () => number; bodies: () => readonly number[] }> {
  const bodies: number[] = [];
  const url = await forwardingProxy(t, () => Number(new URL(current().url).port), (req) => {
    if (req.method === 'PATCH') {
      const i = bodies.push(0) - 1;
      req.on('data', (chunk: Buffer) => void (bodies[i]! += chunk.length));
    }
    return req.url!;
  });
  return { url, patched: (fromRequest = 0) => bodies.slice(fromRequest).reduce((a, b) => a + b, 0), requests: () => bodies.length, bodies: () => bodies };
}

test('a push refused by the quota keeps what crossed on the server; with the quota raised and serve restarted, the next push resumes and sends only the rest', { ...rootOnly, timeout: 240_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 8, seed: 'quota-resume' });
  const snapshot = await pair.snapshot('home.1');
  const whole = await framedLength(snapshot, CHUNK);
  const quota = Math.floor(whole * 0.6);
  let server = await pair.startServer({ limits: { quotaBytes: quota, maxOpenUploads: 2 } });
  const proxy = await countingProxy(t, () => server);
  const options = { server: proxy.url, volume: 'v', snapshots: [snapshot], chunkSize: CHUNK, patchBytes: 256 * 1024, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000, retries: 3 } };

  // Over the quota by itself: refused for good (no retrying, exit 1 as before), saying what is kept and what to do.
  const refused = await push(options, recordingReporter()).then(() => assert.fail('the push went through'), (err: unknown) => err);
  assert.ok(refused instanceof SnapferryError, String(refused));
  assert.equal(refused.code, 'quota_exceeded', refused.message);
  assert.equal(refused.retryable, false, refused.message);
  assert.equal(exitCodeFor(refused), EXIT.failed);

  // The server keeps it: an unfinished upload, its spool holding what it received.
  const api = new ServerApi({ server: server.url });
  const [kept] = (await api.transfers()).transfers;
  assert.equal(kept?.state, 'uploading', JSON.stringify(kept));
  // Its verified frames, and the part of the next one that fit under the quota.
  const spool = (await fs.stat(path.join(pair.root, 'spool', kept.id))).size;
  assert.equal(spool, kept.wireHeld);
  assert.ok(kept.wireOffset > quota / 2, `the server holds ${kept.wireOffset} of ${whole} bytes`);
  // The refused push let go of it as it stopped: held on, the server said a push was sending it, and the next push
  // waited out the lease.
  assert.equal(kept.heldByPush, false, 'the upload is not held by the push that stopped');
  assert.ok(proxy.patched() < quota + 1024 * 1024, `the refused push sent ${proxy.patched()} bytes`);
  // Said to the user: what is kept, and the two ways on.
  assert.match(refused.message, /keeps what has arrived of it/);
  assert.match(refused.message, /raise limits\.quota .*push again and it resumes/);
  assert.match(refused.message, new RegExp(`snapferry abort ${kept.id}`));
  // It counts against the quota, and nothing frees it by itself once its push has gone (its lease, 1 s here): a push
  // of a smaller snapshot of another volume, which would fit alone, is refused for good at once, saying what to do;
  // told to wait for it, the push tried again every 15 s for as long as it was kept.
  await new Promise((r) => setTimeout(r, 1500));
  const small = path.join(pair.client.mountPoint, 'small');
  await createSubvolume(small);
  // Random, so it stays this size framed: under the quota, over what the kept upload leaves of it.
  await fs.writeFile(path.join(small, 'f'), crypto.randomBytes(Math.floor(quota / 2) + 512 * 1024));
  await snapshotReadonly(small, path.join(pair.snaps, 'small.1'));
  const beside = await push({ ...options, volume: 'w', snapshots: [path.join(pair.snaps, 'small.1')] }, recordingReporter()).then(() => assert.fail('the push went through'), (err: unknown) => err);
  assert.ok(beside instanceof SnapferryError, String(beside));
  assert.deepEqual([beside.code, beside.retryable], ['quota_exceeded', false], beside.message);
  assert.match(beside.message, /do not free themselves.*abort the ones not needed/);
  // Both count as open uploads: another upload of the client is refused meanwhile.
  const other = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('other', 'snap', '00000000-0000-4000-8000-000000000001')) });
  assert.equal(other.code, 'too_many_uploads', other.text);

  // The admin raises the quota and restarts serve on the same root: the next push resumes where the server stands.
  await server.close();
  server = await pair.startServer({ limits: { quotaBytes: whole * 4 } });
  const first = proxy.requests();
  const report = recordingReporter();
  const { sent } = await push(options, report);
  const notes = report.notes.join('\n');
  assert.equal(sent[0]!.transfer.id, kept.id, 'the kept upload went on');
  assert.match(notes, /resuming at /, notes);
  const rest = proxy.patched(first);
  assert.ok(rest <= whole - kept.wireOffset + 2 * CHUNK, `the second push sent ${rest} bytes; the server had ${kept.wireOffset} of ${whole}`);
  assert.ok(rest < whole * 0.6, `the second push sent ${rest} of ${whole} bytes`);
  await assertReceived(snapshot, pair.receivedPath('v', 'home.1'));
});

test('a quota refusal keeps the part of the frame in flight that fit under the quota, as a cut does: the resume sends only what the server does not have', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'quota-tail' });
  // Random, so every frame is its header and a whole chunk: the quota's line falls half way through frame 3.
  const chunk = 1024 * 1024;
  const source = path.join(pair.client.mountPoint, 'random');
  await createSubvolume(source);
  await fs.writeFile(path.join(source, 'f'), crypto.randomBytes(6 * chunk));
  const snapshot = path.join(pair.snaps, 'random.1');
  await snapshotReadonly(source, snapshot);
  const whole = await framedLength(snapshot, chunk);
  const quota = Math.floor(3.5 * chunk);
  let server = await pair.startServer({ limits: { quotaBytes: quota } });
  const proxy = await countingProxy(t, () => server);
  const options = { server: proxy.url, volume: 'r', snapshots: [snapshot], chunkSize: chunk, patchBytes: 64 * 1024, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000, retries: 3 } };
  await assert.rejects(push(options, recordingReporter()), { code: 'quota_exceeded', retryable: false });

  const [kept] = (await new ServerApi({ server: server.url }).transfers()).transfers;
  assert.equal(kept?.state, 'uploading', JSON.stringify(kept));
  assert.equal(kept.framesVerified, 3, JSON.stringify(kept));
  const held = kept.wireHeld ?? kept.wireOffset;
  // Dropped, the half frame (up to a whole chunk, 4 MiB by default) was sent again by every push the quota refused.
  assert.ok(held > 3.4 * chunk, `the server holds ${held} bytes, ${kept.wireOffset} of them verified, under a quota of ${quota}`);
  assert.equal((await fs.stat(path.join(pair.root, 'spool', kept.id))).size, held);

  await server.close();
  server = await pair.startServer({ limits: { quotaBytes: whole * 4 } });
  const first = proxy.requests();
  await push(options, recordingReporter());
  // Up to 4 KiB more: what a PATCH's connection took and lost when it broke (a kept-alive one the restart closed),
  // which its retry sends again. Not the half frame the server holds.
  assert.ok(proxy.patched(first) <= whole - held + 4096, `the resume sent ${proxy.patched(first)} bytes; the server had ${held} of ${whole} (PATCH bodies, the resume's from #${first}: ${proxy.bodies().join(', ')})`);
  // A PATCH holds whole frames, and the refused one crossed whole: what crossed twice is only what it carried past
  // the quota's line (the rest of frame 3), and a little for the upload's record and frame index, which count too.
  const resent = proxy.patched() - whole;
  const pastTheLine = 4 * (chunk + FRAME_HEADER_SIZE) - quota;
  assert.ok(resent <= pastTheLine + 4096, `${resent} bytes crossed twice (${proxy.patched()} sent in all for ${whole}); ${pastTheLine} were past the quota`);
  await assertReceived(snapshot, pair.receivedPath('r', 'random.1'));
});

test('a quota-refused upload can be aborted, which frees its spool at once', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'quota-abort' });
  const snapshot = await pair.snapshot('home.1');
  const quota = Math.floor((await framedLength(snapshot, CHUNK)) / 2);
  const server = await pair.startServer({ limits: { quotaBytes: quota } });
  const options = { server: server.url, volume: 'v', snapshots: [snapshot], chunkSize: CHUNK, patchBytes: 256 * 1024, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000, retries: 3 } };
  await assert.rejects(push(options, recordingReporter()), { code: 'quota_exceeded', retryable: false });
  const api = new ServerApi({ server: server.url });
  const [kept] = (await api.transfers()).transfers;
  assert.equal(kept?.state, 'uploading');
  assert.equal((await api.abort(kept.id)).state, 'aborted');
  assert.deepEqual(await fs.readdir(path.join(pair.root, 'spool')), []);
  // The tus upload is gone with it.
  const head = await fetch(`${server.url}${UPLOADS_PATH}/${kept.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.notEqual(head.status, 200);
});

test('a quota-refused upload expires like any unfinished upload that no push comes back to', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'quota-expire' });
  const snapshot = await pair.snapshot('home.1');
  const quota = Math.floor((await framedLength(snapshot, CHUNK)) / 2);
  const server = await pair.startServer({ limits: { quotaBytes: quota }, expireAfterMs: 3000, leaseMs: 500 });
  const options = { server: server.url, volume: 'v', snapshots: [snapshot], chunkSize: CHUNK, patchBytes: 256 * 1024, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000, retries: 3 } };
  await assert.rejects(push(options, recordingReporter()), { code: 'quota_exceeded', retryable: false });
  const api = new ServerApi({ server: server.url });
  const [kept] = (await api.transfers()).transfers;
  assert.equal(kept?.state, 'uploading');
  const expired = await until('the refused upload to expire', async () => {
    const now = await api.transfer(kept.id);
    return now.state === 'failed' ? now : undefined;
  }, 30_000);
  assert.equal(expired.error?.code, 'upload_expired');
  await until('its spool to go', async () => (await fs.readdir(path.join(pair.root, 'spool'))).length === 0, 10_000);
});
