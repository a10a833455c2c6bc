/**
 * `snapferry status` from the command line: the server's volumes beside this machine's snapshot folder, an upload in
 * flight with its progress, as a table that fits 100 columns and as JSON with the same data.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import path from 'node:path';
import { fillVaried, rootOnly } from '../fixtures/btrfs.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { gatherStatus, type StatusReport } from '../../client/status/data.ts';
import { renderStatus } from '../../client/status/view.ts';
import { UPLOADS_PATH } from '../../core/protocol.ts';
import { frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { until } from '../fixtures/receive-exit.ts';
import { createPair, recordingReporter } from './harness.ts';
import { SNAPFERRY_BIN } from './processes.ts';
import { CHUNK, create, encodeMetadata, hostileServer, metadataFor, patch, settled, streamOfRandomFile } from './hostile-client.ts';

const snapferry = (args: string[]) => execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000, env: { SNAPFERRY_TOKEN: '' } });

test('status: newest snapshot on each side, what the server lacks, an upload in flight; text and --json', { ...rootOnly, timeout: 300_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'status' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'home', snapshots: [s1] }, recordingReporter());
  // Enough new data that s2's incremental stream is many frames long.
  await fillVaried(path.join(pair.source, 'more'), { seed: 'status-more', sizeMB: 3 });
  const s2 = await pair.snapshot('s2');
  // s2's upload stopped midway: in flight on the server.
  const controller = new AbortController();
  const run = push(
    { server: server.url, volume: 'home', snapshots: [s2], compress: 1, chunkSize: 64 * 1024, patchBytes: 256 * 1024, limitRate: 512 * 1024, signal: controller.signal },
    recordingReporter(),
  );
  run.catch(() => undefined);
  const api = new ServerApi({ server: server.url });
  for (const end = Date.now() + 60_000; !(await api.transfers()).transfers.some((x) => x.snapshot === 's2' && x.framesVerified >= 2); await sleep(100)) {
    assert.ok(Date.now() < end, 'the upload of s2 got going');
  }
  controller.abort();
  await run.catch(() => undefined);

  const args = ['status', '--server', server.url, '--snapshots-dir', `home=${pair.snaps}`];
  const json = await snapferry([...args, '--json']);
  assert.equal(json.exitCode, EXIT.ok, json.stderr);
  const report = JSON.parse(json.stdout) as StatusReport;
  assert.equal(report.server.url, server.url);
  assert.ok(report.server.freeBytes! > 0);
  assert.deepEqual(report.volumes.map((v) => [v.name, v.snapshots, v.newest?.name, v.local]), [
    ['home', 1, 's1', { dir: pair.snaps, snapshots: 2, newest: 's2', notOnServer: 1 }],
  ]);
  const [inFlight] = report.inFlight;
  assert.equal(report.inFlight.length, 1);
  assert.equal(inFlight!.snapshot, 's2');
  assert.equal(inFlight!.state, 'uploading');
  assert.ok(inFlight!.frames >= 2 && inFlight!.wireBytes > 0);
  assert.ok(inFlight!.rawEstimate !== null && inFlight!.percent !== null && inFlight!.percent >= 0 && inFlight!.percent < 100, JSON.stringify(inFlight));
  assert.equal(report.lastError, null);

  const text = await snapferry(args);
  assert.equal(text.exitCode, EXIT.ok, text.stderr);
  for (const line of text.stdout.trimEnd().split('\n')) assert.ok(line.length <= 100, `too wide: ${line}`);
  assert.match(text.stdout, /^home +1 +s1 +\S+ ago +s2 +1$/m);
  assert.match(text.stdout, new RegExp(`^home/s2 +uploading +.* ${inFlight!.percent}% +.* ${inFlight!.frames}$`, 'm'));

  const bad = await snapferry(['status', '--server', server.url, '--snapshots-dir', pair.snaps]);
  assert.notEqual(bad.exitCode, EXIT.ok);
  assert.match(bad.stderr, /VOLUME=DIR/);
});

test('status: SENT counts the first frame while it arrives and what a cut request left of it, though no frame verified yet', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const url = h.server.url;
  const uuid = randomUuid();
  const framed = await frameStream(streamOfRandomFile(uuid, 4), CHUNK);
  const created = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('home', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const id = created.id!;
  const api = new ServerApi({ server: url });
  const inFlight = async () => (await gatherStatus(api, url, {})).inFlight.find((x) => x.id === id)!;

  // A slow line: 40000 bytes of frame 0 (65608 on the wire) are on the server, the rest still to come.
  const part = 40_000;
  const cut = new AbortController();
  const request = fetch(`${url}${UPLOADS_PATH}/${id}`, {
    method: 'PATCH', signal: cut.signal, duplex: 'half',
    headers: { 'Tus-Resumable': '1.0.0', 'Upload-Offset': '0', 'Content-Type': 'application/offset+octet-stream' },
    body: new ReadableStream<Uint8Array>({ start: (c) => c.enqueue(framed.subarray(0, part)) }),
  } as RequestInit).catch((err: unknown) => err);
  await until('the part to arrive', async () => (await api.transfer(id)).wireArrived === part);
  const arriving = await inFlight();
  assert.deepEqual([arriving.state, arriving.wireBytes, arriving.frames, arriving.rawBytes], ['uploading', part, 0, 0]);
  assert.match(renderStatus(await gatherStatus(api, url, {})), /^home\/snap +uploading +0 B .* 39\.1 KiB +0$/m);
  // Verified figures, the resume's, are as they were.
  assert.deepEqual([(await api.transfer(id)).wireOffset, (await api.transfer(id)).chain], [0, '00'.repeat(32)]);

  // The line is cut: the part is kept for the next request, and still counts.
  cut.abort();
  await request;
  await until('the cut request to end', async () => !h.server.service.inFlight(id));
  assert.deepEqual([(await inFlight()).wireBytes, (await inFlight()).frames], [part, 0]);
  const head = await fetch(`${url}${UPLOADS_PATH}/${id}`, { method: 'HEAD', headers: { 'Tus-Resumable': '1.0.0' } });
  assert.equal(head.headers.get('upload-offset'), String(part), 'the tus offset (where a push resumes) is the spool\'s, as before');

  // The rest: the stream is whole and received, and held is what verified.
  const rest = await patch(url, id, part, framed.subarray(part), { 'Upload-Length': String(framed.length) });
  assert.equal(rest.status, 204, rest.text);
  assert.equal((await settled(h, id)).state, 'received');
  const done = await api.transfer(id);
  assert.deepEqual([done.wireHeld, done.wireOffset], [framed.length, framed.length]);
});

test('status and /metrics list a volume once it holds something: not for a bare upload creation, from its first byte, and not after its abort', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const url = h.server.url;
  const api = new ServerApi({ server: url });
  const listed = async () => ({
    volumes: (await api.volumes()).volumes.map((v) => [v.name, v.snapshots]),
    count: (await api.status()).volumes,
    metrics: /^snapferry_snapshots\{client="default",volume="home"\} \d+$/m.test(await (await fetch(`${url}/metrics`)).text()),
  });
  const uuid = randomUuid();
  const framed = await frameStream(streamOfRandomFile(uuid, 4), CHUNK);
  const created = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('home', 'snap', uuid)) });
  assert.equal(created.status, 201, created.text);
  const id = created.id!;

  // Created, no byte sent: the transfer is there (in flight), the volume is not yet.
  assert.deepEqual((await api.transfers()).transfers.map((x) => [x.id, x.state]), [[id, 'uploading']]);
  assert.deepEqual(await listed(), { volumes: [], count: 0, metrics: false });
  assert.equal((await gatherStatus(api, url, {})).volumes.length, 0);

  // Part of frame 0 is on the server: the first push into the volume is under way.
  const part = await patch(url, id, 0, framed.subarray(0, 1000));
  assert.equal(part.status, 204, part.text);
  assert.deepEqual(await listed(), { volumes: [['home', 0]], count: 1, metrics: true });

  // Aborted, it holds nothing any more, and the volume holds no snapshot.
  assert.equal((await fetch(`${url}/v1/transfers/${id}/abort`, { method: 'POST' })).status, 200);
  assert.deepEqual(await listed(), { volumes: [], count: 0, metrics: false });

  // Received: listed for its snapshot.
  const again = await create(url, { 'Upload-Metadata': encodeMetadata(metadataFor('home', 'snap', uuid)) });
  const whole = await patch(url, again.id!, 0, framed, { 'Upload-Length': String(framed.length) });
  assert.equal(whole.status, 204, whole.text);
  assert.equal((await settled(h, again.id!)).state, 'received');
  assert.deepEqual(await listed(), { volumes: [['home', 1]], count: 1, metrics: true });
});
