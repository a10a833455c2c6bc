/**
 * The plain spool (server/spool/spool.ts), with no tus around it and no receive behind it, on a real folder: what it
 * hands its FrameSink and when, what a refused first frame or end frame leaves, rewind, the arrivals counter, the
 * gate each index record passes (the quota's), and drop.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { SnapferryError } from '../../core/errors.ts';
import type { FrameError } from '../../core/wire/index.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { readRecords } from '../../server/spool/frame-index.ts';
import { SLAB_BYTES } from '../../server/spool/arrival-memory.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';
import { appendBody, spoolWith } from './spool-fixture.ts';
import { streamIdentity } from '../../core/wire/frame-seal.ts';
import { deriveKeys } from '../../core/crypto/keys.ts';

const CHUNK = 64 * 1024;
const ID = 'e'.repeat(32);

async function spoolIn(t: TestContext) {
  const damage: string[] = [];
  const { layout, spool } = await spoolWith(t, ID, { onDamage: (id, message) => void damage.push(`${id}: ${message}`) });
  return { layout, spool, damage };
}

/** A sink that writes down what it is handed, in order. */
function recordingSink(over: Partial<FrameSink> = {}) {
  const events: string[] = [];
  const sink: FrameSink = {
    start: (frame) => void events.push(`start ${Buffer.concat(frame.raw ?? []).length}`),
    stored: (frame) => {
      events.push(`stored ${frame.index}`);
      return false;
    },
    complete: (p) => void events.push(`complete ${p.framesVerified} ${p.wireOffset}`),
    endRefused: (err: FrameError) => void events.push(`endRefused ${err.code}`),
    ...over,
  };
  return { events, sink };
}

function append(spool: Spool, offset: number, bytes: Buffer, sink: FrameSink): Promise<number> {
  return appendBody(spool, ID, offset, bytes, CHUNK, sink);
}

test('append hands the sink frame 0 to check, each data frame once written and indexed, and the end once', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const raw = mixedBytes(3 * CHUNK + 100, CHUNK);
  const { wire, frames } = await encode(raw, { chunkSize: CHUNK, level: 1 });
  let indexedWhenStored = -1;
  const { events, sink } = recordingSink({});
  const stored = sink.stored;
  sink.stored = async (frame) => {
    // Handed over only once its record is on the index: a receive may read the spool up to it.
    if (frame.index === 2) indexedWhenStored = (await readRecords(layout.frameIndexFile(ID), 0, 10)).length;
    return stored(frame);
  };
  assert.equal(await append(spool, 0, wire, sink), wire.length);
  assert.deepEqual(events, ['start 65536', 'stored 0', 'stored 1', 'stored 2', 'stored 3', `complete 4 ${wire.length}`]);
  assert.equal(indexedWhenStored, 3);
  assert.equal(frames.length, 5, 'four data frames and the end frame');
  assert.equal(spool.arrived(ID), wire.length);
  // A complete upload sent its end frame again (a retried request): nothing completes twice.
  const { events: again, sink: second } = recordingSink();
  await assert.rejects(append(spool, wire.length, wire.subarray(frames[3]!.wireOffset), second), (err: unknown) => err instanceof SnapferryError);
  assert.deepEqual(again.filter((e) => e.startsWith('complete')), []);
});

test('a first frame the sink refuses is kept nowhere: the spool stays empty and the refusal is what append throws', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire } = await encode(mixedBytes(2 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const refusal = new SnapferryError('stream_metadata_mismatch', 'not the snapshot the metadata names');
  const { events, sink } = recordingSink({
    start: () => {
      throw refusal;
    },
  });
  await assert.rejects(append(spool, 0, wire, sink), (err) => err === refusal);
  assert.deepEqual(events, []);
  assert.equal((await fs.stat(layout.spoolFile(ID))).size, 0);
  assert.equal((await spool.progress(ID)).framesVerified, 0);
});

test('the back-pressure of the sink holds the append: the next frame is not taken until it resolves', async (t) => {
  const { spool } = await spoolIn(t);
  const { wire } = await encode(mixedBytes(3 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const { sink } = recordingSink({ stored: (frame) => (frame.index === 0 ? held.then(() => false) : false) });
  let asked = 0;
  spool.gateIndex(ID, () => (asked++, true));
  const appending = append(spool, 0, wire, sink);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((await spool.progress(ID)).framesVerified, 1, 'frame 0 is written; frame 1 waits for the receive');
  assert.equal(asked, 1, 'only frame 0 asked the gate for its record');
  release();
  assert.equal(await appending, wire.length);
  assert.equal(asked, 4, 'each frame asked once: three data frames and the end');
});

test('a frame whose record the gate refuses ends the append there: it and the frames after it stay as the tail, and the next append indexes them', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire } = await encode(mixedBytes(3 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const { events, sink } = recordingSink();
  let admit = 2;
  const ungate = spool.gateIndex(ID, () => admit-- > 0);
  assert.equal(await append(spool, 0, wire, sink), wire.length, 'the refused frames are kept, not sent again');
  assert.equal((await readRecords(layout.frameIndexFile(ID), 0, 10)).length, 2, 'no record past the refusal');
  assert.deepEqual(events, ['start ' + CHUNK, 'stored 0', 'stored 1']);
  ungate();
  assert.equal(await append(spool, wire.length, Buffer.alloc(0), sink), wire.length);
  assert.equal((await readRecords(layout.frameIndexFile(ID), 0, 10)).length, 4);
  assert.deepEqual(events.slice(3), ['stored 2', `complete 3 ${wire.length}`]);
});

test('what arrived after a refused record in the same read is kept after it: the client sends none of it again', async (t) => {
  const { layout, spool } = await spoolIn(t);
  // Half the chunks random: more than a slab of arrival memory (1 MiB), so the one read is taken in two pieces.
  const { wire } = await encode(mixedBytes(40 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  assert.ok(wire.length > SLAB_BYTES + CHUNK, `${wire.length} bytes`);
  const { sink } = recordingSink();
  let admit = 2;
  const ungate = spool.gateIndex(ID, () => admit-- > 0);
  // Refused at frame 2, in the first piece: the second piece, already here, is part of the tail too.
  assert.equal(await append(spool, 0, wire, sink), wire.length);
  assert.equal((await readRecords(layout.frameIndexFile(ID), 0, 50)).length, 2);
  ungate();
  assert.equal(await append(spool, wire.length, Buffer.alloc(0), sink), wire.length);
  assert.equal((await spool.progress(ID)).complete, true);
});

test('an end frame whose chain disagrees is refused: the sink hears it, the frames before it stay, nothing completes', async (t) => {
  const { spool } = await spoolIn(t);
  const a = await encode(mixedBytes(2 * CHUNK, CHUNK, 3), { chunkSize: CHUNK, level: 1 });
  const b = await encode(mixedBytes(2 * CHUNK, CHUNK, 4), { chunkSize: CHUNK, level: 1 });
  const dataEnd = a.frames[1]!.wireOffset + a.frames[1]!.wireLength;
  // Stream a's data frames, then the end frame of stream b (its chain is b's).
  const { events, sink } = recordingSink();
  const body = new PassThrough();
  const appending = spool.append(ID, body, 0, CHUNK, sink);
  body.write(a.wire.subarray(0, dataEnd));
  await new Promise((r) => setTimeout(r, 50));
  body.end(b.wire.subarray(b.frames[2]!.wireOffset));
  await assert.rejects(appending, { code: 'frame_chain_mismatch' });
  assert.deepEqual(events, ['start 65536', 'stored 0', 'stored 1', 'endRefused frame_chain_mismatch']);
  const progress = await spool.progress(ID);
  assert.equal(progress.wireOffset, dataEnd);
  assert.equal(progress.complete, false);
});

test('rewind cuts spool and index back to N frames; past what it holds is invalid_input; drop deletes every file', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(4 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const { sink } = recordingSink();
  await append(spool, 0, wire.subarray(0, frames[3]!.wireOffset), sink);
  await assert.rejects(spool.rewind(ID, 4), { code: 'invalid_input' });
  const back = await spool.rewind(ID, 1);
  assert.equal(back.framesVerified, 1);
  assert.equal(back.wireOffset, frames[1]!.wireOffset);
  assert.equal((await fs.stat(layout.spoolFile(ID))).size, frames[1]!.wireOffset);
  assert.equal((await spool.frames(ID, 0, 10)).length, 1);
  // The client sends again from frame 1, and the stream completes.
  assert.equal(await append(spool, back.wireOffset, wire.subarray(back.wireOffset), sink), wire.length);
  assert.ok(spool.arrived(ID) > wire.length, 'arrivals count every byte that came, the re-sent ones too');
  await spool.drop(ID);
  for (const f of layout.spoolFiles(ID)) await assert.rejects(fs.stat(f), { code: 'ENOENT' });
  assert.equal(spool.arrived(ID), 0);
  await spool.drop(ID);
});

test('an append takes the spool as the open() just before it left it, once: a later append, or a rewind, repair or drop in between, looks at the files again', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(6 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const { sink } = recordingSink();
  const at = (i: number) => frames[i]!.wireOffset;
  // tus's order for a PATCH: open (its look at the upload), then append. The next append has no open before it: it
  // must see the files as the first left them, not as that open did.
  assert.equal((await spool.open(ID)).size, 0);
  assert.equal(await append(spool, 0, wire.subarray(0, at(2)), sink), at(2));
  assert.equal(await append(spool, at(2), wire.subarray(at(2), at(3)), sink), at(3));
  // A rewind between an open and its append: the append starts from the rewound spool, not from what open read.
  assert.equal((await spool.open(ID)).size, at(3));
  await spool.rewind(ID, 1);
  await assert.rejects(append(spool, at(3), wire.subarray(at(3), at(4)), sink), { code: 'offset_mismatch' });
  assert.equal(await append(spool, at(1), wire.subarray(at(1), at(4)), sink), at(4));
  // A repair between them, after the spool was cut from outside: the append sees the cut.
  assert.equal((await spool.open(ID)).size, at(4));
  await fs.truncate(layout.spoolFile(ID), at(3));
  assert.equal((await spool.repair(ID)).wireOffset, at(3));
  await assert.rejects(append(spool, at(4), wire.subarray(at(4)), sink), { code: 'offset_mismatch' });
  assert.equal(await append(spool, at(3), wire.subarray(at(3)), sink), wire.length);
  // A drop between them: the append finds no spool, and makes none.
  await spool.open(ID);
  await spool.drop(ID);
  await assert.rejects(append(spool, wire.length, Buffer.alloc(0), sink), { code: 'ENOENT' });
  for (const f of layout.spoolFiles(ID)) await assert.rejects(fs.stat(f), { code: 'ENOENT' });
});

test('an index damaged on disk is cut back to the frames before the damage, said so naming the file, and the upload goes on from there', async (t) => {
  const { layout, spool, damage } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(4 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const { sink } = recordingSink();
  await append(spool, 0, wire.subarray(0, frames[3]!.wireOffset), sink);
  // Its last record (frame 2) overwritten with zeros, as a damaged disk or a stray write leaves it.
  const indexFile = layout.frameIndexFile(ID);
  const handle = await fs.open(indexFile, 'r+');
  await handle.write(Buffer.alloc(64), 0, 64, 2 * 64);
  await handle.close();

  // Before: frame 0's place read from the zeros, offset 0 and a zero chain, which no regenerated stream matches (a
  // push then blamed an update of btrfs-progs or the kernel), and nothing said the index was damaged.
  assert.equal((await spool.progress(ID)).framesVerified, 2, 'what status shows: the frames before the damage');
  const open = await spool.open(ID);
  assert.equal(open.progress.framesVerified, 2);
  assert.equal(open.progress.wireOffset, frames[2]!.wireOffset);
  assert.equal((await spool.frames(ID, 0, 10)).length, 2, 'the damaged record is gone from the index');
  assert.equal(damage.length, 1, damage.join('\n'));
  assert.ok(damage[0]!.includes(indexFile), damage[0]);
  assert.match(damage[0]!, /is damaged on disk at record 2 \(it says frame 0, not 2\): the upload was cut back to the 2 frames before it/);
  assert.match(damage[0]!, /the client sends the rest again by itself/);
  assert.doesNotMatch(damage[0]!, /kernel|btrfs-progs/);
  // The frame whose record was damaged is kept as the part of a frame, verified again by the next request.
  const { events, sink: rest } = recordingSink();
  assert.equal(await append(spool, open.size, wire.subarray(open.size), rest), wire.length);
  assert.deepEqual(events.filter((e) => e.startsWith('complete')), [`complete 4 ${wire.length}`]);
  assert.equal(damage.length, 1, 'said once');
});

test('a stream that turns sealed after a plain frame 0 is refused at its first sealed frame, which is kept nowhere', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const raw = mixedBytes(3 * CHUNK, CHUNK);
  const plain = await encode(raw, { chunkSize: CHUNK, level: 1 });
  const sealed = await encode(raw, { chunkSize: CHUNK, level: 1, seal: { key: deriveKeys(Buffer.alloc(32, 3)), stream: streamIdentity('u', null) } });
  // Frame 0 plain (it passes the sink's check), then frame 1 of the sealed encoding: same index, same raw offset.
  const mixed = Buffer.concat([
    plain.wire.subarray(0, plain.frames[1]!.wireOffset),
    sealed.wire.subarray(sealed.frames[1]!.wireOffset, sealed.frames[2]!.wireOffset),
  ]);
  const { events, sink } = recordingSink();
  await assert.rejects(append(spool, 0, mixed, sink), (err: unknown) => err instanceof SnapferryError && err.code === 'encryption_needs_archive' && err.retryable === false);
  assert.deepEqual(events, ['start 65536', 'stored 0']);
  assert.equal((await spool.progress(ID)).framesVerified, 1);
  assert.equal((await fs.stat(layout.spoolFile(ID))).size, plain.frames[1]!.wireOffset);
});

test('held counts the part of a frame still arriving and the part a cut request left, never as verified; a part that fails is held no more', async (t) => {
  const { spool } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(3 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const { sink } = recordingSink();
  assert.equal(await spool.held(ID), 0);
  // Half of frame 0 has arrived; the rest is on its way.
  const half = Math.floor(frames[0]!.wireLength / 2);
  const body = new PassThrough();
  const appending = spool.append(ID, body, 0, CHUNK, sink);
  body.write(wire.subarray(0, half));
  for (const end = Date.now() + 5000; (await spool.held(ID)) !== half; await new Promise((r) => setTimeout(r, 10))) {
    assert.ok(Date.now() < end, `held ${await spool.held(ID)}, not ${half}`);
  }
  assert.deepEqual([(await spool.progress(ID)).wireOffset, (await spool.progress(ID)).framesVerified], [0, 0]);
  // The line is cut: the part is kept for the next request, and still held.
  body.destroy(new Error('cut'));
  await assert.rejects(appending);
  assert.equal(await spool.held(ID), half);
  assert.equal((await spool.progress(ID)).framesVerified, 0);
  // The rest of frame 0 and a little of frame 1.
  const into1 = frames[1]!.wireOffset + 10;
  assert.equal(await append(spool, half, wire.subarray(half, into1), sink), into1);
  assert.deepEqual([await spool.held(ID), (await spool.progress(ID)).wireOffset], [into1, frames[1]!.wireOffset]);
  // The rest of frame 1, damaged: the part kept with it goes, and only the verified frame is held.
  const damaged = Buffer.from(wire.subarray(into1, frames[2]!.wireOffset));
  damaged[damaged.length - 1]! ^= 0xff;
  await assert.rejects(append(spool, into1, damaged, sink), { code: 'partial_frame_mismatch' });
  assert.equal(await spool.held(ID), frames[1]!.wireOffset);
  // Whole: held is the stream, as verified.
  assert.equal(await append(spool, frames[1]!.wireOffset, wire.subarray(frames[1]!.wireOffset), sink), wire.length);
  assert.deepEqual([await spool.held(ID), (await spool.progress(ID)).wireOffset], [wire.length, wire.length]);
});

test('drop during an append stops it at once: it rejects with upload_gone without waiting for the body, and writes nothing more', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(4 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const { events, sink } = recordingSink();
  // Frame 0 and half of frame 1 have arrived; the rest is on its way, and takes its time (a slow line).
  const body = new PassThrough();
  const appending = spool.append(ID, body, 0, CHUNK, sink);
  appending.catch(() => undefined);
  const into1 = frames[1]!.wireOffset + 100;
  body.write(wire.subarray(0, into1));
  for (const end = Date.now() + 5000; (await spool.held(ID)) !== into1; await new Promise((r) => setTimeout(r, 10))) {
    assert.ok(Date.now() < end, `held ${await spool.held(ID)}, not ${into1}`);
  }
  // Open, as the append has it, to see what is written once the files are deleted.
  const file = await fs.open(layout.spoolFile(ID), 'r');
  t.after(() => file.close());
  const before = (await file.stat()).size;
  await spool.drop(ID);
  const stopped = await Promise.race([
    appending.then(() => 'resolved', (err: SnapferryError) => err.code),
    new Promise((r) => setTimeout(r, 1000, 'still reading')),
  ]);
  assert.equal(stopped, 'upload_gone');
  // The body is ended (nobody reads the rest of frame 1), and nothing more is written: not a kept tail either.
  assert.ok(body.destroyed);
  await new Promise((r) => setTimeout(r, 50));
  assert.equal((await file.stat()).size, before);
  assert.deepEqual(events, [`start ${CHUNK}`, 'stored 0'], 'no frame after the drop reached the sink');
  assert.equal(spool.arrived(ID), 0, 'nothing counted as arrived after the drop');
});

test('a slow disk: the next request is written while the sync before it runs, answered once that sync is done; a HEAD waits for none; a later sync is never overtaken; a drop outlives it', async (t) => {
  // Each sync waits for the disk (the test) to let it through, as a sync of 8 MiB on a slow disk takes its time.
  let disk: { open: Promise<void>; let: () => void } | null = null;
  /** The syncs started from now on wait until `let` is called. */
  const slowDisk = () => {
    let open!: () => void;
    const gate = { open: new Promise<void>((resolve) => (open = resolve)), let: () => open() };
    disk = gate;
    return gate;
  };
  const { layout, spool } = await spoolWith(t, ID, { syncFile: async (file) => {
    await disk?.open;
    await file.sync();
  } });
  spool.answerWhenWritten(ID, true);
  const raw = mixedBytes(6 * CHUNK, CHUNK);
  const { wire, frames } = await encode(raw, { chunkSize: CHUNK, level: 1 });
  const at = (i: number) => frames[i]!.wireOffset;
  const { events, sink } = recordingSink();
  const sizeOnDisk = async () => (await fs.stat(layout.spoolFile(ID))).size;
  const pending = (p: Promise<unknown>) => Promise.race([p.then(() => 'settled', () => 'settled'), new Promise((r) => setTimeout(r, 100, 'pending'))]);

  const first = slowDisk();
  assert.equal(await append(spool, 0, wire.subarray(0, at(2)), sink), at(2), 'answered once written, its sync held');
  assert.equal(spool.syncedOffset(ID), 0);
  const secondSync = slowDisk();
  const second = append(spool, at(2), wire.subarray(at(2), at(4)), sink);
  second.catch(() => undefined);
  // Its last frame's bytes reach the spool before its record and the receive: wait for both.
  for (const end = Date.now() + 5000; (await sizeOnDisk()) !== at(4) || events.length < 5; await new Promise((r) => setTimeout(r, 10))) {
    assert.ok(Date.now() < end, `the next request's frames were not written while the sync before it ran: the spool holds ${await sizeOnDisk()} bytes, not ${at(4)}; the receive had ${events.join(', ')}`);
  }
  assert.deepEqual(events, [`start ${CHUNK}`, 'stored 0', 'stored 1', 'stored 2', 'stored 3'], 'its frames went on to the receive');
  assert.equal(await pending(second), 'pending', 'not answered before the sync of the request before it');
  // The next PATCH asks for the upload first (tus's HEAD): it does not wait for the syncs either.
  assert.equal(await pending(spool.open(ID)), 'settled', 'a HEAD waits for no sync');
  assert.equal((await spool.open(ID)).size, at(4));
  first.let();
  assert.equal(await second, at(4));
  assert.equal(spool.syncedOffset(ID), at(2), 'the synced offset its answer carries is the request before it, on disk');
  secondSync.let();
  for (const end = Date.now() + 5000; spool.syncedOffset(ID) !== at(4); await new Promise((r) => setTimeout(r, 10))) {
    assert.ok(Date.now() < end, `synced at ${spool.syncedOffset(ID)}, not ${at(4)}, once the disk let its sync through`);
  }

  // A request not answered early (its client drops what is acknowledged) after one that was: its synced offset is
  // never overtaken by the slower sync before it.
  const slowBefore = slowDisk();
  assert.equal(await append(spool, at(4), wire.subarray(at(4), at(5) - 10), sink), at(5) - 10);
  slowDisk().let();
  spool.answerWhenWritten(ID, false);
  const caughtUp = append(spool, at(5) - 10, wire.subarray(at(5) - 10, at(5)), sink);
  assert.equal(await pending(caughtUp), 'pending', 'its answer waits for the sync before it');
  slowBefore.let();
  assert.equal(await caughtUp, at(5));
  assert.equal(spool.syncedOffset(ID), at(5), 'answered after its own sync and the one before it');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(spool.syncedOffset(ID), at(5), 'the sync before it said nothing after');
  spool.answerWhenWritten(ID, true);

  // Dropped (an abort) while a sync is under way: that sync says nothing once it is done.
  const third = slowDisk();
  assert.equal(await append(spool, at(5), wire.subarray(at(5), at(5) + 10), sink), at(5) + 10);
  await spool.drop(ID);
  third.let();
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(spool.syncedOffset(ID), null);
});

test('an upload answered once written: append resolves before the sync, the synced offset one request behind; never so after a restart', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const raw = mixedBytes(6 * CHUNK, CHUNK);
  const { wire, frames } = await encode(raw, { chunkSize: CHUNK, level: 1 });
  const at = (i: number) => frames[i]!.wireOffset;
  const { sink } = recordingSink();
  spool.answerWhenWritten(ID, true);
  assert.equal(spool.syncedOffset(ID), 0, 'a new spool is on disk at 0');
  assert.equal(await append(spool, 0, wire.subarray(0, at(2)), sink), at(2));
  assert.equal(spool.syncedOffset(ID), 0, 'answered before its sync');
  assert.equal(await append(spool, at(2), wire.subarray(at(2), at(4)), sink), at(4));
  assert.equal(spool.syncedOffset(ID), at(2), 'the next request waited for the sync before it');
  // The sync under way catches up by itself.
  for (const end = Date.now() + 5000; spool.syncedOffset(ID) !== at(4); await new Promise((r) => setTimeout(r, 10))) {
    assert.ok(Date.now() < end, `synced at ${spool.syncedOffset(ID)}, not ${at(4)}`);
  }

  // A server started again knows nothing synced: its first request is answered after its sync.
  const restarted = new Spool(layout);
  restarted.answerWhenWritten(ID, true);
  assert.equal(restarted.syncedOffset(ID), null);
  assert.equal(await append(restarted, at(4), wire.subarray(at(4), at(5)), sink), at(5));
  assert.equal(restarted.syncedOffset(ID), at(5), 'answered after its sync');
  // The end frame too, whoever asks.
  assert.equal(await append(restarted, at(5), wire.subarray(at(5)), sink), wire.length);
  assert.equal(restarted.syncedOffset(ID), wire.length, 'the end is answered on disk');
  // Cut back (a rewind), what was synced past the cut is no longer there.
  await restarted.rewind(ID, 3);
  assert.equal(restarted.syncedOffset(ID), at(3));
});
