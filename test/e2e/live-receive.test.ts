/**
 * The server receives while the upload goes on (issue 9): verified frames go into a running `btrfs receive` at once,
 * a cut leaves it waiting, and the snapshot takes its name only once the end frame verified. An abort or an end
 * frame that disagrees with the frames leaves nothing that looks received.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { push } from '../../client/push/push.ts';
import { ServerApi } from '../../client/http/api.ts';
import type { Transfer } from '../../core/protocol.ts';
import { SendStreamBuilder, frameStream, randomUuid } from '../fixtures/send-streams.ts';
import { parseAll } from '../wire/frame-helpers.ts';
import { encodeEndFrame } from '../../core/wire/index.ts';
import { assertReceived, createPair, pushPart, recordingReporter, until } from './harness.ts';
import { CHUNK, create, encodeMetadata, hostileServer, metadataFor, patch, settled } from './hostile-client.ts';

const slow = { ...rootOnly, timeout: 300_000 };

/** The transfer once the receive has taken every frame the server holds and the upload has stopped growing. */
async function caughtUp(api: ServerApi, id: string): Promise<Transfer> {
  let last = -1;
  return until('the receive to catch up', async () => {
    const t = await api.transfer(id);
    const still = t.rawBytes === last && t.rawReceived === t.rawBytes;
    last = t.rawBytes;
    return still && t;
  });
}

test('the server receives while the upload goes on: a stopped upload waits in btrfs receive, under a staging name only, and the resumed one finishes it', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 12, seed: 'live' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const api = new ServerApi({ server: server.url });

  const partial = await pushPart(server, s1, 6);
  const waiting = await caughtUp(api, partial.id);
  assert.equal(waiting.state, 'uploading');
  assert.ok(waiting.rawReceived > 0, 'the verified frames went into btrfs receive');
  const metrics = await (await fetch(`${server.url}/metrics`)).text();
  assert.match(metrics, new RegExp(`^snapferry_receiving_raw_bytes\\{client="default"\\} ${waiting.rawReceived}$`, 'm'), 'the received position in /metrics too');
  const volumeDir = path.join(pair.root, 'volumes', 'default', 'v');
  assert.deepEqual(await fs.readdir(volumeDir), [`.incoming-${partial.id}`], 'being received, under its staging name');
  assert.equal(await btrfs.isSubvolume(path.join(volumeDir, `.incoming-${partial.id}`)), true);
  assert.deepEqual((await api.snapshots('v')).snapshots, [], 'nothing looks received');

  const report = recordingReporter();
  const result = await push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 64 * 1024 }, report);
  const done = result.sent[0]!.transfer;
  assert.equal(done.id, partial.id, 'the same upload, resumed');
  assert.equal(done.state, 'received');
  assert.equal(done.rawReceived, done.rawBytes, 'both positions at the end of the stream');
  assert.deepEqual(await fs.readdir(volumeDir), ['s1']);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});

test('an upload aborted while its receive runs leaves no subvolume behind', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 12, seed: 'live-abort' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const api = new ServerApi({ server: server.url });
  const partial = await pushPart(server, s1, 4);
  await caughtUp(api, partial.id);
  const volumeDir = path.join(pair.root, 'volumes', 'default', 'v');
  assert.deepEqual(await fs.readdir(volumeDir), [`.incoming-${partial.id}`]);

  await sleep(1100); // the stopped push's lease runs out
  const aborted = await api.abort(partial.id);
  assert.equal(aborted.state, 'aborted');
  assert.deepEqual(await fs.readdir(volumeDir), [], 'the partial subvolume is deleted');
  assert.deepEqual((await fs.readdir(path.join(pair.root, 'spool'))).filter((f) => f.startsWith(partial.id)), []);
});

test('an end frame that disagrees with the frames verified stops the receive and deletes what it wrote; the right one completes it from the spool', rootOnly, async (t) => {
  const h = await hostileServer(t);
  const uuid = randomUuid();
  // A first file larger than a chunk, then a few more: frame 0 (checked as it arrives) and several data frames.
  const builder = new SendStreamBuilder().subvol('snap', uuid).file('pad', Buffer.alloc(32768, 1));
  for (let at = 32768; at < 8 * 32768; at += 32768) builder.write('pad', Buffer.alloc(32768, at / 32768), at);
  const raw = builder.file('last', Buffer.from('the last file\n')).end().build();
  const framed = await frameStream(raw, CHUNK);
  const end = parseAll(framed, [framed.length]).at(-1)!;
  assert.equal(end.kind, 'end');

  const created = await create(h.server.url, { 'Upload-Metadata': encodeMetadata(metadataFor('v', 'snap', uuid)) });
  const id = created.id!;
  assert.equal((await patch(h.server.url, id, 0, framed.subarray(0, end.wireStart))).status, 204);
  const api = new ServerApi({ server: h.server.url });
  await until('the receive to take every data frame', async () => (await api.transfer(id)).rawReceived === raw.length);
  // btrfs receive has read the stream's END by now: all it lacks is the end frame's word.
  assert.deepEqual(await fs.readdir(h.volumeDir('v')), [`.incoming-${id}`]);

  // A well-formed end frame whose chain says the stream is another one.
  const wrongChain = Buffer.from(end.chain);
  wrongChain[0] = wrongChain[0]! ^ 0xff;
  const lying = encodeEndFrame({ chunkSize: CHUNK, frameCount: end.index, totalRaw: end.rawOffset, chain: wrongChain });
  const refused = await patch(h.server.url, id, end.wireStart, lying, { 'Upload-Length': String(framed.length) });
  assert.equal(refused.status, 460, refused.text);
  assert.equal(refused.code, 'frame_chain_mismatch');
  await until('the partial receive to go', async () => (await fs.readdir(h.volumeDir('v'))).length === 0, 10_000);
  const waiting = await api.transfer(id);
  assert.equal(waiting.state, 'uploading', 'the upload stays, to be completed');
  assert.deepEqual((await api.snapshots('v')).snapshots, []);

  const good = await patch(h.server.url, id, end.wireStart, framed.subarray(end.wireStart), { 'Upload-Length': String(framed.length) });
  assert.equal(good.status, 204, good.text);
  const final = await settled(h, id);
  assert.equal(final.state, 'received', final.error?.message);
  assert.deepEqual(await fs.readdir(h.volumeDir('v')), ['snap']);
  assert.equal(await fs.readFile(path.join(h.volumeDir('v'), 'snap', 'last'), 'utf8'), 'the last file\n');
});

test("a receive that fails for the server's own reasons starts again from the spool, and the upload goes on", slow, async (t) => {
  const pair = await createPair(t, { fillMB: 12, seed: 'live-retry' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const api = new ServerApi({ server: server.url });
  const partial = await pushPart(server, s1, 4);
  await caughtUp(api, partial.id);
  // An admin (or a failing disk) takes the subvolume from under the running receive: its next write fails.
  const staged = path.join(pair.root, 'volumes', 'default', 'v', `.incoming-${partial.id}`);
  await btrfs.deleteSubvolume(staged);

  const result = await push({ server: server.url, volume: 'v', snapshots: [s1], chunkSize: 64 * 1024 }, recordingReporter());
  const done = result.sent[0]!.transfer;
  assert.equal(done.id, partial.id, 'the same upload');
  assert.equal(done.state, 'received');
  assert.doesNotMatch(done.lastInterruption ?? '', /damaged|rewound/, 'the client was not asked to send anything again');
  assert.equal(done.error, null);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
