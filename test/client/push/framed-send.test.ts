// What a push holds between `btrfs send` and the upload (client/push/framed-send.ts), against real btrfs: with an
// upload that reads nothing, the send is read only a few chunks ahead, and the frames that come out are the stream,
// checked and renamed, whole. Needs root (skipped with a message otherwise).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import * as btrfs from '../../../core/btrfs/index.ts';
import { FrameDecoder, SEND_COMMAND_HEADER_LENGTH, SEND_STREAM_HEADER_LENGTH, stableStreamName } from '../../../core/wire/index.ts';
import { openFramedSend } from '../../../client/push/framed-send.ts';
import { beforeTakeDown, createBtrfs, rootOnly, snapshotReadonly } from '../../fixtures/btrfs.ts';
import { bytesWritten, sendChildren } from '../../fixtures/send-children.ts';

const MiB = 1024 * 1024;

async function randomSnapshot(t: Parameters<typeof createBtrfs>[0], sizeMiB: number) {
  const fs = await createBtrfs(t);
  const vol = `${fs.mountPoint}/vol`;
  await btrfs.createSubvolume(vol);
  // Random bytes: raw frames (level 0) carry the chunks as they are read, so what is held is what was read.
  await writeFile(`${vol}/data`, crypto.randomBytes(sizeMiB * MiB));
  await snapshotReadonly(vol, `${fs.mountPoint}/s1`);
  return `${fs.mountPoint}/s1`;
}

/** Waits until `pid` has written nothing more for `quietMs`; returns what it had written then. */
async function writtenWhenStalled(pid: number, quietMs: number): Promise<number> {
  let last = bytesWritten(pid) ?? 0;
  let since = Date.now();
  while (Date.now() - since < quietMs) {
    await sleep(50);
    const now = bytesWritten(pid);
    assert.ok(now !== null, 'btrfs send exited while nothing read its stream');
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

test('with the upload reading nothing, btrfs send is read at most a few chunks ahead of it', rootOnly, async (t) => {
  const chunkSize = 1 * MiB;
  // The send still runs at the test's end: stopped before the filesystem is taken down, which it holds.
  const closeFirst = beforeTakeDown(t);
  const s1 = await randomSnapshot(t, 24);
  const framed = await openFramedSend({ snapshotPath: s1, parentPath: null, chunkSize, level: 0, maxSlice: 2 * chunkSize });
  closeFirst(async () => {
    framed.cancel();
    await framed.done.catch(() => undefined);
  });
  const [pid] = sendChildren();
  assert.ok(pid !== undefined, 'no btrfs send running');
  const written = await writtenWhenStalled(pid, 1000);
  // Held: a chunk waiting in the reads, part of the next being filled, and the frame the encoder made, unread; the
  // pipe holds its 64 KiB on top. With the check and the renamer as stream stages of their own and a PassThrough
  // after the encoder, 5.25 MiB was read here.
  const pipe = 64 * 1024;
  assert.ok(written <= 3 * chunkSize + pipe, `btrfs send wrote ${(written / MiB).toFixed(2)} MiB before the pipeline stopped reading it, over 3 chunks`);
  assert.ok(written > chunkSize, `only ${(written / MiB).toFixed(2)} MiB read: the pipeline did not fill, so this measures nothing`);
});

test('the frames, read as the upload reads them, are the whole stream, renamed and checked', rootOnly, async (t) => {
  const chunkSize = 1 * MiB;
  const s1 = await randomSnapshot(t, 5);
  const plain = btrfs.send(s1);
  const chunks: Buffer[] = [];
  for await (const chunk of plain.stream) chunks.push(chunk as Buffer);
  await plain.done;
  const sent = Buffer.concat(chunks);

  const framed = await openFramedSend({ snapshotPath: s1, parentPath: null, chunkSize, level: 3, maxSlice: 4 * chunkSize });
  const header = await framed.header;
  const wire: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const { value, done } = await framed.source.slice(offset, offset + 4 * chunkSize);
    if (value) {
      // Header and payload come as the buffers the encoder made: no slice is one joined copy of a frame.
      assert.ok(value.pieces.length >= 2, 'a slice came as one piece');
      // Copied: once the next slice is asked for, the source hands this one's memory back to be read into again.
      wire.push(...value.pieces.map((piece) => Buffer.from(piece)));
      offset += value.size;
    }
    if (done) break;
  }
  await framed.done;
  const decoder = new FrameDecoder();
  const raw: Buffer[] = [];
  decoder.on('data', (b: Buffer) => raw.push(b));
  await new Promise<void>((resolve, reject) => {
    decoder.once('finish', resolve);
    decoder.once('error', reject);
    decoder.end(Buffer.concat(wire));
  });
  const received = Buffer.concat(raw);
  // The check reads btrfs's own first command; the renaming changes that command only (its name: the snapshot's
  // stable name, from its UUID), and every byte after it is btrfs's own.
  assert.equal(header.path, 's1');
  const afterFirst = (stream: Buffer) => SEND_STREAM_HEADER_LENGTH + SEND_COMMAND_HEADER_LENGTH + stream.readUInt32LE(SEND_STREAM_HEADER_LENGTH);
  assert.ok(received.subarray(afterFirst(received)).equals(sent.subarray(afterFirst(sent))), 'the stream after its first command differs from what btrfs sent');
  assert.ok(received.subarray(0, afterFirst(received)).includes(Buffer.from(stableStreamName(header.uuid))), 'the first command does not carry the stable name');
});
