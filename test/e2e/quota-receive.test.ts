/**
 * A transfer that ends must end its receive with it: the tester's data loss. A quota-refused upload (then failed by
 * the refusal) had its `btrfs receive` run on beside a failed transfer, unseen by the one-receive-per-volume rule, so
 * the next push into the volume was received beside it; when the server stopped, the refused receive's cleanup deleted
 * everything that had appeared in the folder since it started, the snapshot received and acknowledged meanwhile too.
 * A quota refusal now keeps the upload (test/e2e/quota-resume.test.ts), in progress with its receive, holding its
 * volume; it ends when it is aborted or expires, and its receive must stop with it all the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { beforeTakeDown, createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { receivePidIn, receiveRunsIn, signalPending, until } from '../fixtures/receive-exit.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { startServer, type RunningServer } from '../../server/serve.ts';
import { silentLogger } from '../../server/log.ts';
import { CHUNK, create, encodeMetadata, metadataFor, patch, streamOfRandomFile, uploadStream, uploadWithReceiveRunning } from './hostile-client.ts';

const MiB = 1024 * 1024;
const QUOTA = 4 * MiB;

test('a quota-refused upload holds its volume; aborted, its receive stops at once, and a snapshot received after it survives the server stopping and starting', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const running: RunningServer[] = [];
  closeFirst(async () => {
    for (const s of running) await s.close().catch(() => undefined);
  });
  const start = async () => {
    const s = await startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 500, limits: { quotaBytes: QUOTA } });
    running.push(s);
    return s;
  };
  const volumeDir = path.join(root, 'volumes', 'default', 'q1');
  let server = await start();

  // ~10 MB of incompressible data, without its end frame: the quota refuses it part way, with its receive running.
  const bigUuid = randomUuid();
  const created = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('q1', 'big', bigUuid)) });
  assert.equal(created.status, 201, created.text);
  const framed = await frameStream(streamOfRandomFile(bigUuid, 200), CHUNK);
  const refused = await patch(server.url, created.id!, 0, framed.subarray(0, framed.length - FRAME_HEADER_SIZE));
  assert.equal(refused.status, 413, refused.text);
  assert.equal(refused.code, 'quota_exceeded');
  // Kept, to be resumed once the quota is raised: in progress, it holds its volume.
  assert.equal(server.service.transferRecord(created.id!)?.state, 'uploading');
  const busy = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('q1', 'home', randomUuid())) });
  assert.equal(busy.code, 'volume_busy', busy.text);

  // Aborted, answered only once its receive is stopped and what it wrote is gone.
  assert.equal((await fetch(`${server.url}/v1/transfers/${created.id}/abort`, { method: 'POST' })).status, 200);
  assert.equal(server.service.transferRecord(created.id!)?.state, 'aborted');
  assert.equal(await receiveRunsIn(volumeDir), false, 'the refused upload\'s btrfs receive no longer runs');
  assert.deepEqual(await fs.readdir(volumeDir).catch(() => []), [], 'no partial subvolume of the refused upload is left');
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.doesNotMatch(metrics, /^snapferry_receiving_raw_bytes\{client="default"\} [1-9]/m, 'no bytes count as being received');

  // The next snapshot into the same volume is received, and is there to stay.
  const homeUuid = randomUuid();
  const home = await uploadStream(server.url, metadataFor('q1', 'home', homeUuid), streamOfRandomFile(homeUuid, 8));
  assert.equal(home.patched.status, 204, home.patched.text);
  await until('the snapshot to be received', async () => {
    await server.service.idle();
    return server.service.transferRecord(home.id)?.state === 'received';
  });
  assert.deepEqual(await fs.readdir(volumeDir), ['home']);

  // A graceful stop (SIGTERM does the same), then a start: the received snapshot is still on disk and on record.
  await server.close();
  running.pop();
  assert.equal(await btrfs.isSubvolume(path.join(volumeDir, 'home')), true, 'the received snapshot survives the server stopping');
  server = await start();
  assert.deepEqual(server.service.snapshotRecords('default', 'q1').map((s) => s.name), ['home'], 'and stays on record after a start');
  assert.deepEqual(await fs.readdir(volumeDir), ['home']);
});

test('an upload that ends (expired) holds its volume until its receive has stopped: a push into the volume meanwhile is volume_busy', { ...rootOnly, timeout: 120_000 }, async (t) => {
  const closeFirst = beforeTakeDown(t);
  const fsx = await createBtrfs(t, { sizeMiB: 256 });
  const root = path.join(fsx.mountPoint, 'root');
  const server = await startServer({ root, host: '127.0.0.1', port: 0, behindProxy: false, log: silentLogger(), leaseMs: 500, expireAfterMs: 3000, limits: { quotaBytes: QUOTA } });
  let frozen: number | null = null;
  closeFirst(async () => {
    if (frozen !== null) process.kill(frozen, 'SIGCONT');
    await server.close().catch(() => undefined);
  });
  // Its receive starts in the volume's folder.
  const { id, volumeDir } = await uploadWithReceiveRunning(server, root, { volume: 'q2', snapshot: 'big', pieces: 200, headFrames: 16 });
  // A receive slow to stop: stopped (SIGSTOP), SIGTERM only stays pending, until SIGCONT (or execa's SIGKILL 5 s on).
  frozen = await receivePidIn(volumeDir);
  assert.notEqual(frozen, null);
  process.kill(frozen!, 'SIGSTOP');

  // Nothing more comes: the upload expires, its transfer fails, and the server stops its receive.
  await until('the server to stop the expired upload\'s receive', () => signalPending(frozen!, 15));
  assert.equal(server.service.transferRecord(id)?.state, 'failed');
  assert.equal(await receiveRunsIn(volumeDir), true, 'its btrfs receive still runs in the folder');

  // The ended upload's receive still writes in the folder: a second receive there must not start.
  const early = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('q2', 'home', randomUuid())) });
  assert.equal(early.status, 409, early.text);
  assert.equal(early.code, 'volume_busy');

  process.kill(frozen!, 'SIGCONT');
  frozen = null;
  // Stopped and cleaned up: the volume is free, and nothing of the ended upload is left in it.
  let later = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('q2', 'home', randomUuid())) });
  for (let end = Date.now() + 20_000; later.code === 'volume_busy' && Date.now() < end; ) {
    await new Promise((r) => setTimeout(r, 250));
    later = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('q2', 'home', randomUuid())) });
  }
  assert.equal(later.status, 201, later.text);
  assert.equal(await receiveRunsIn(volumeDir), false);
  assert.deepEqual(await fs.readdir(volumeDir), [], 'no partial subvolume of the ended upload is left');
});
