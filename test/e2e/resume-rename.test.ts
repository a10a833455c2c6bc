/**
 * A snapshot renamed (mv) while its upload is unfinished, as snapferry itself advises for a misdated name: the push
 * goes on where the server stands instead of sending everything again, the server keeps the name the upload was
 * created with, and push says so, so that `restore NAME` works with the name push printed (docs/design.md, "Resume";
 * core/wire/stream-naming.ts). Before, btrfs send's stream carried the directory's name in its first command: frame 0
 * differed after the rename, push rewound the upload to frame 0 and sent it all again, and its last line named a
 * snapshot the server did not hold. Also: an upload an older snapferry began (its stream named after the directory)
 * is resumed by this one, renamed since or not, without a rewind.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { rootOnly } from '../fixtures/btrfs.ts';
import { frameStream } from '../fixtures/send-streams.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { META, WIRE_FORMAT } from '../../core/protocol.ts';
import { ServerApi } from '../../client/http/api.ts';
import { push } from '../../client/push/push.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { assertReceived, createPair, framedLength, recordingReporter, until } from './harness.ts';
import { create, encodeMetadata, patch } from './hostile-client.ts';
import { ChildProcesses, type ChildExit, type SnapferryProcess } from './processes.ts';

const CHUNK = 256 * 1024;
const TAKEN = 'home.20261206T014500Z';
/** How long a push or restore of this test's few MB may take, with what it printed when it takes longer. */
async function exitOf(p: SnapferryProcess, ms = 60_000): Promise<ChildExit> {
  const late = until(`snapferry ${p.args[0]} to exit`, () => !p.running, ms).catch(() => {
    throw new Error(`snapferry ${p.args[0]} still runs after ${ms} ms:\n${p.stderr}`);
  });
  await Promise.race([p.exited, late]);
  return p.exited;
}
const RENAMED = 'home.20261206T014400Z';

test('a partly pushed snapshot renamed here: the next push sends only the rest, under the name the server keeps', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 24, seed: 'resume-rename' });
  // Receives wait until the test has read the server's figures: the spool, and what arrived for it, go once received.
  const server = await pair.startServer({ holdReceives: true, leaseMs: 1000 });
  const api = new ServerApi({ server: server.url });
  const taken = await pair.snapshot(TAKEN);
  const wire = await framedLength(taken, CHUNK);
  const args = (snapshot: string, ...more: string[]) => ['push', '--server', server.url, '--volume', 'home', '--chunk-size', '256K', '--compress', '3', ...more, snapshot];

  // The tester's steps: a push cut by kill -9 after 8 frames, `mv`, push again.
  const first = children.run(args(taken, '--limit-rate', '2M'));
  const partial = await until('8 verified frames, a quarter of the stream', async () => {
    if (!first.running) throw new Error(`the first push ended before its kill:\n${first.stderr}`);
    return (await api.transfers()).transfers.find((x) => x.framesVerified >= 8 && x.wireOffset >= wire / 4);
  }, 60_000, 25);
  assert.equal((await first.kill9()).signal, 'SIGKILL');
  const held = await until('the killed push to be off the line', async () => {
    const x = await api.transfer(partial.id);
    return server.service.inFlight(partial.id) ? undefined : x;
  }, 30_000, 50);
  assert.equal(held.state, 'uploading');
  assert.ok(held.wireOffset < wire / 2, `the server holds ${held.wireOffset} of ${wire} B: use more data`);
  const renamed = path.join(pair.snaps, RENAMED);
  await fs.rename(taken, renamed);

  const second = children.run(args(renamed));
  const whole = await until('the whole stream on the server', async () => {
    if (!second.running) throw new Error(`the second push ended before the stream was whole:\n${second.stderr}`);
    const x = await api.transfer(partial.id);
    return x.state === 'receiving' ? x : undefined;
  }, 60_000, 25);
  server.service.resumeReceives();
  const exit = await exitOf(second);
  assert.equal(exit.code, EXIT.ok, second.stderr);

  // Only the rest crossed (the server's count of request bodies): before, everything was sent again from frame 0.
  const sentAfter = whole.wireArrived - held.wireArrived;
  t.diagnostic(`held ${held.wireOffset} B (${held.framesVerified} frames) of ${wire}; ${sentAfter} B arrived after the rename`);
  assert.ok(sentAfter <= wire - held.wireOffset, `${sentAfter} B arrived after the rename for the ${wire - held.wireOffset} B the server lacked:\n${second.stderr}`);
  assert.doesNotMatch(second.stderr, /rewound|different stream/);
  assert.match(second.stderr, new RegExp(`resuming at .* \\(frame ${held.framesVerified}\\); the rest was only hashed, not sent`));
  assert.equal(whole.wireOffset, wire, 'the server holds the stream one uninterrupted push makes');

  // The server keeps the upload's name, and push says which, and that the snapshot was renamed here since.
  assert.match(second.stderr, new RegExp(`${RENAMED}: renamed here since its upload began as ${TAKEN}; the server keeps that name`));
  assert.match(second.stderr, new RegExp(`received by the server \\(${TAKEN}, renamed here to ${RENAMED} since\\)\\n$`));
  assert.deepEqual((await api.snapshots('home')).snapshots.map((s) => s.name), [TAKEN]);
  await assertReceived(renamed, pair.receivedPath('home', TAKEN));

  // The name push printed is the one restore takes.
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);
  const restore = children.run(['restore', '--server', server.url, '--volume', 'home', TAKEN, dest]);
  assert.equal((await exitOf(restore)).code, EXIT.ok, restore.stderr);
  await assertReceived(renamed, path.join(dest, TAKEN));
  // And a push of the folder later finds it there under that name.
  const again = children.run(args(pair.snaps));
  assert.equal((await exitOf(again)).code, EXIT.ok, again.stderr);
  assert.match(again.stderr, new RegExp(`${RENAMED} \\(there as ${TAKEN}\\) is already on the server`));
});

/** The bytes of `btrfs send` of `snapshot`, named as btrfs names it: what an older snapferry framed. */
async function sentAsBtrfsNamesIt(snapshot: string): Promise<Buffer> {
  const send = btrfs.send(snapshot);
  const parts: Buffer[] = [];
  for await (const b of send.stream) parts.push(b as Buffer);
  await send.done;
  return Buffer.concat(parts);
}

/** The wire offset after the first `frames` frames of a framed stream. */
function afterFrames(framed: Buffer, frames: number): number {
  let at = 0;
  for (let i = 0; i < frames; i++) at += FRAME_HEADER_SIZE + framed.readUInt32BE(at + 16);
  return at;
}

/**
 * An older client's upload: the raw stream as btrfs send names it, framed at level 3, its first 8 frames uploaded.
 * Then, renamed (mv) or not, this version's push resumes it.
 */
async function legacyResume(t: TestContext, mv: boolean): Promise<void> {
  const pair = await createPair(t, { fillMB: 12, seed: `resume-legacy-name-${mv}` });
  // Receives wait until the test has read the server's figures: the spool, and what arrived for it, go once received.
  const server = await pair.startServer({ holdReceives: true, leaseMs: 500 });
  const api = new ServerApi({ server: server.url });
  const taken = await pair.snapshot(TAKEN);
  const uuid = (await btrfs.subvolumeShow(taken)).uuid;
  const legacy = await frameStream(await sentAsBtrfsNamesIt(taken), CHUNK, 3);
  const metadata = { [META.volume]: 'home', [META.snapshot]: TAKEN, [META.uuid]: uuid, [META.format]: WIRE_FORMAT, [META.chunkSize]: String(CHUNK), [META.sendStream]: 'v1' };
  const created = await create(server.url, { 'Upload-Metadata': encodeMetadata(metadata) });
  assert.equal(created.status, 201, created.text);
  const id = created.id!;
  const held = afterFrames(legacy, 8);
  assert.equal((await patch(server.url, id, 0, legacy.subarray(0, held))).status, 204);
  const before = await api.transfer(id);
  assert.equal(before.framesVerified, 8);
  const now = mv ? path.join(pair.snaps, RENAMED) : taken;
  if (mv) await fs.rename(taken, now);

  const report = recordingReporter();
  const pushing = push({ server: server.url, volume: 'home', snapshots: [now], chunkSize: CHUNK, compress: 3, pollMs: 100, backoff: { baseMs: 200, maxMs: 1000 } }, report);
  pushing.catch(() => undefined);
  const whole = await until('the whole stream on the server', async () => {
    const x = await api.transfer(id);
    return x.state === 'receiving' ? x : undefined;
  }, 60_000, 25);
  server.service.resumeReceives();
  const { sent } = await pushing;

  const notes = report.notes.join('\n');
  const sentAfter = whole.wireArrived - before.wireArrived;
  t.diagnostic(`${sentAfter} B arrived for the ${legacy.length - held} B the server lacked`);
  assert.doesNotMatch(notes, /rewound|different stream/, notes);
  assert.match(notes, /resuming at .* \(frame 8\)/, notes);
  assert.ok(sentAfter <= legacy.length - held, `${sentAfter} B arrived for the ${legacy.length - held} B the server lacked`);
  assert.equal(whole.wireOffset, legacy.length, 'the upload went on as the older client began it');
  assert.equal(sent[0]!.transfer.id, id);
  assert.equal(sent[0]!.transfer.snapshot, TAKEN);
  await assertReceived(now, pair.receivedPath('home', TAKEN));
}

test('an upload an older snapferry began (its stream named after the directory) resumes here without a rewind', { ...rootOnly, timeout: 120_000 }, (t) => legacyResume(t, false));

test('... and so does one renamed here since', { ...rootOnly, timeout: 120_000 }, (t) => legacyResume(t, true));
