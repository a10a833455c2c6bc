// An archive's quota refusal keeps what crossed, as a btrfs server's does (test/e2e/quota-resume.test.ts): a push of a
// stream over the client's quota is refused once a quota's worth is in the bucket, the upload stays open with its
// segments, and once serve is restarted with the quota raised the next push resumes it from the server's offset,
// sending only the rest; the stored stream restores identical. Before, the refusal ended the upload and its segments
// went, and the next push sent everything again. Real servers on a real RGW bucket, the bytes counted by a proxy.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { forwardingProxy } from '../fixtures/forwarding-proxy.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { SnapferryError } from '../../core/errors.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { startArchiveServer } from '../../server/archive/archive-serve.ts';
import { silentLogger } from '../../server/log.ts';
import { sharedS3, type TestBucket } from '../archive/store-fixture.ts';
import { assertReceived, createPair, framedLength, recordingReporter } from './harness.ts';
import path from 'node:path';
import fs from 'node:fs/promises';

const s3 = sharedS3();
const CHUNK = 64 * 1024;

async function archive(t: { after(fn: () => unknown): void }, bucket: TestBucket, quotaBytes: number) {
  const { server: rgw } = bucket;
  const running = await startArchiveServer({
    host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), limits: { quotaBytes },
    store: { endpoint: rgw.endpoint, bucket: bucket.name, prefix: 'quota', region: rgw.region, credentials: { accessKeyId: rgw.accessKeyId, secretAccessKey: rgw.secretAccessKey } },
  });
  let closed = false;
  t.after(() => (closed ? undefined : running.close()));
  return { ...running, close: () => ((closed = true), running.close()) };
}

test('a push into the archive refused by the quota keeps its segments; with the quota raised and serve restarted, the next push resumes and sends only the rest', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 8, seed: 'archive-quota-resume' });
  const snapshot = await pair.snapshot('home.1');
  const whole = await framedLength(snapshot, CHUNK);
  const bucket = await s3.bucket();
  let server = await archive(t, bucket, Math.floor(whole * 0.6));
  let patched = 0;
  const proxy = await forwardingProxy(t, () => Number(new URL(server.url).port), (req) => {
    if (req.method === 'PATCH') req.on('data', (chunk: Buffer) => void (patched += chunk.length));
    return req.url!;
  });
  const options = { server: proxy, volume: 'home', snapshots: [snapshot], chunkSize: CHUNK, patchBytes: 256 * 1024, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000, retries: 3 } };

  const refused = await push(options, recordingReporter()).then(() => assert.fail('the push went through'), (err: unknown) => err);
  assert.ok(refused instanceof SnapferryError, String(refused));
  assert.deepEqual([refused.code, refused.retryable, exitCodeFor(refused)], ['quota_exceeded', false, EXIT.failed], refused.message);
  const [kept] = (await new ServerApi({ server: server.url }).transfers()).transfers;
  assert.equal(kept?.state, 'uploading', JSON.stringify(kept));
  assert.match(refused.message, new RegExp(`keeps what has arrived of it \\(transfer ${kept.id}.*push again and it resumes`));
  const head = await fetch(`${server.url}${UPLOADS_PATH}/${kept.id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  const held = Number(head.headers.get('upload-offset'));
  assert.ok(held > whole * 0.3, `the archive holds ${held} of ${whole} bytes`);

  await server.close();
  server = await archive(t, bucket, whole * 4);
  const before = patched;
  const report = recordingReporter();
  const { sent } = await push(options, report);
  assert.equal(sent[0]!.transfer.id, kept.id, 'the kept upload went on');
  const rest = patched - before;
  assert.ok(rest <= whole - held + 2 * CHUNK, `the second push sent ${rest} bytes; the archive had ${held} of ${whole}`);
  assert.ok(rest < whole * 0.75, `the second push sent ${rest} of ${whole} bytes`);

  const fresh = await createBtrfs(t, { sizeMiB: 256 });
  const dest = path.join(fresh.mountPoint, 'restored');
  await fs.mkdir(dest);
  await restore({ server: server.url, volume: 'home', snapshot: 'home.1', destDir: dest, chunkSize: CHUNK, retries: 0 }, recordingReporter());
  await assertReceived(snapshot, path.join(dest, 'home.1'));
});
