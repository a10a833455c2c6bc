import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { spawn } from 'node:child_process';
import { FrameEncoder, FrameParser } from '../../../core/wire/index.ts';
import { FramedUploadSource } from '../../../client/upload/source.ts';

/** Frames `raw` through a child process (`cat`), as btrfs send's stdout would arrive, into a FramedUploadSource. */
function sourceFor(
  raw: Buffer,
  chunkSize: number,
  maxSlice: number,
  /** As client/push/framed-send.ts wires it: frames as the encoder made them, acknowledged raw frames recycled. */
  asPushed?: { recycled: Buffer[] },
): { source: FramedUploadSource; done: Promise<void> } {
  const child = spawn('cat', [], { stdio: ['pipe', 'pipe', 'inherit'] });
  const out = asPushed ? new PassThrough({ readableObjectMode: true, readableHighWaterMark: 4 }) : new PassThrough({ highWaterMark: 1024 });
  const recycle = (b: Buffer) => {
    asPushed?.recycled.push(b);
    encoder.recycle(b);
  };
  const source = new FramedUploadSource({ stream: out, startOffset: 0, ...(asPushed ? { recycle } : {}) }, maxSlice);
  const encoder: FrameEncoder = new FrameEncoder({
    chunkSize,
    level: asPushed ? 0 : 3,
    onFrame: (f) => source.frameEnded(f.wireOffset + f.wireLength, f.kind === 'end'),
  });
  // Feed the child in odd pieces so its stdout arrives in arbitrary chunks.
  void (async () => {
    for (let i = 0; i < raw.length; i += 7777) {
      if (!child.stdin.write(raw.subarray(i, i + 7777))) await new Promise((r) => child.stdin.once('drain', r));
    }
    child.stdin.end();
  })();
  return { source, done: pipeline(child.stdout, encoder, out) };
}

/** Reads the source the way tus-js-client does: slice from the acknowledged offset until done. */
async function drain(source: FramedUploadSource, patch: number, ack = (sent: number, _value: Buffer) => sent) {
  const slices: Buffer[] = [];
  let offset = 0;
  for (;;) {
    const { value, done } = await source.slice(offset, offset + patch);
    const bytes = value ? Buffer.concat(value.pieces) : Buffer.alloc(0);
    if (value) {
      assert.equal(value.size, bytes.length, 'tus-js-client reads .size');
      slices.push(bytes);
    }
    offset = ack(offset + bytes.length, bytes);
    if (done) return { slices, offset };
  }
}

for (const [label, size] of [
  ['odd size', 3 * 65536 + 123],
  ['exact multiple of the chunk size', 4 * 65536],
  ['empty stream', 0],
] as const) {
  test(`every byte arrives, whole frames per slice, done with the last (${label})`, async () => {
    const raw = crypto.randomBytes(size);
    const { source, done } = sourceFor(raw, 65536, 100_000);
    assert.equal(source.endTaken, false);
    const { slices } = await drain(source, 100_000);
    await done;
    // What the push asks before it waits for the pipeline: a source whose end was never taken would not end it.
    assert.equal(source.endTaken, true);
    const wire = Buffer.concat(slices);
    // Every slice ends on a frame boundary: a parser fed slice by slice holds nothing pending after each.
    const parser = new FrameParser({ chunkSize: 65536, keepRaw: true });
    const decoded: Buffer[] = [];
    for (const s of slices) {
      assert.ok(s.length > 0);
      for (const f of parser.push(s)) if (f.raw) decoded.push(Buffer.concat(f.raw));
      assert.equal(parser.state().pendingBytes, 0, 'a slice ended mid-frame');
    }
    parser.finish();
    assert.deepEqual(Buffer.concat(decoded), raw);
    assert.ok(wire.length > raw.length, 'random data plus headers');
  });
}

test('after a cut the source hands out again from the offset the server acknowledged', async () => {
  const raw = crypto.randomBytes(5 * 65536);
  const { source, done } = sourceFor(raw, 65536, 3 * 70_000);
  let cuts = 0;
  // What the "server" holds: of the first slice longer than a frame it keeps only the first frame, as if the PATCH
  // was cut after it; the rest must come again in later slices.
  const kept: Buffer[] = [];
  const { offset } = await drain(source, 3 * 70_000, (sent, value) => {
    if (cuts === 0 && value.length > 70_000) {
      cuts++;
      kept.push(value.subarray(0, 72 + 65536));
      return sent - value.length + 72 + 65536;
    }
    kept.push(value);
    return sent;
  });
  await done;
  assert.equal(cuts, 1);
  const held = Buffer.concat(kept);
  const parser = new FrameParser({ chunkSize: 65536 });
  parser.push(held);
  parser.finish();
  assert.equal(parser.state().rawOffset, raw.length);
  assert.equal(offset, held.length);
  await assert.rejects(source.slice(0, 10), /already acknowledged/);
});

test('slices start at one frame and double up to the largest allowed', async () => {
  const raw = crypto.randomBytes(20 * 65536);
  const { source, done } = sourceFor(raw, 65536, 5 * 65608);
  const { slices } = await drain(source, 5 * 65608);
  await done;
  const frames = slices.map((s) => Math.round(s.length / 65608));
  assert.deepEqual(frames.slice(0, 5), [1, 2, 4, 5, 5], `frames per slice: ${frames.join(', ')}`);
});

test('the memory of acknowledged raw frames is filled again with later chunks, and every byte still arrives', async () => {
  const raw = crypto.randomBytes(12 * 65536 + 999);
  const asPushed = { recycled: [] as Buffer[] };
  const { source, done } = sourceFor(raw, 65536, 2 * 65608, asPushed);
  const { slices } = await drain(source, 2 * 65608);
  await done;
  const parser = new FrameParser({ chunkSize: 65536, keepRaw: true });
  const decoded = slices.flatMap((s) => parser.push(s)).flatMap((f) => (f.raw ? [Buffer.concat(f.raw)] : []));
  parser.finish();
  assert.deepEqual(Buffer.concat(decoded), raw);
  // Whole-chunk payloads came back once acknowledged, and later chunks were filled in the same memory.
  const full = asPushed.recycled.filter((b) => b.length === 65536);
  const memory = new Set(full.map((b) => b.buffer));
  assert.ok(full.length >= 8, `only ${full.length} raw frames came back to the encoder`);
  assert.ok(memory.size < full.length, `${full.length} frames came back in ${memory.size} buffers: none was filled twice`);
});

test('after a cut the server may hold part of a frame: a slice starts there, and the whole frame is still there to send again', async () => {
  const raw = crypto.randomBytes(4 * 65536);
  const { source, done } = sourceFor(raw, 65536, 65536);
  const frame = 72 + 65536;
  // Frame 0 acknowledged, then 40% of frame 1 arrived before the cut: the server's offset is inside frame 1.
  const whole = Buffer.concat((await source.slice(0, frame)).value!.pieces);
  assert.equal(whole.length, frame);
  const sent = (await source.slice(frame, 2 * frame)).value!;
  assert.equal(sent.size, frame);
  const inside = frame + Math.floor(0.4 * frame);
  const rest = (await source.slice(inside, inside + frame)).value!;
  assert.equal(inside + rest.size, 2 * frame, 'the slice goes on to the end of frame 1');
  // The kept part did not verify with the rest (partial_frame_mismatch): the server asks for frame 1 whole.
  const again = (await source.slice(frame, frame + frame)).value!;
  assert.equal(again.size, frame);
  assert.deepEqual(Buffer.concat(rest.pieces), Buffer.concat(again.pieces).subarray(inside - frame));
  // Read on to the end, as the upload would (closing early would cut the feeding child off mid-write).
  for (let offset = 2 * frame; ; ) {
    const { value, done: last } = await source.slice(offset, offset + frame);
    offset += value?.size ?? 0;
    if (last) break;
  }
  await done;
});

test('while a PATCH is out the source holds it and reads at most half a slice ahead, however fast frames come', async () => {
  const frame = 1000;
  const maxSlice = 8 * frame;
  let pulled = 0;
  const frames = 64;
  // One frame buffered in the stream, as framed-send.ts's PassThrough holds one frame for the source.
  const stream = new Readable({
    objectMode: true,
    highWaterMark: 1,
    read() {
      if (pulled === frames * frame) {
        this.push(null);
        return;
      }
      pulled += frame;
      source.frameEnded(pulled, false);
      this.push(Buffer.alloc(frame, pulled / frame));
    },
  });
  const source: FramedUploadSource = new FramedUploadSource({ stream, startOffset: 0 }, maxSlice);
  let offset = 0;
  let mostHeld = 0;
  while (offset < 48 * frame) {
    const { value } = await source.slice(offset, offset + maxSlice);
    assert.ok(value);
    // The PATCH goes out; frames are there at once, so whatever the source reads ahead it reads now.
    for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
    mostHeld = Math.max(mostHeld, pulled - offset);
    offset += value.size;
  }
  source.close();
  assert.ok(mostHeld > maxSlice, `it read ahead at all (${mostHeld} bytes held)`);
  assert.ok(mostHeld <= maxSlice + maxSlice / 2 + 2 * frame, `held ${mostHeld} bytes with a ${maxSlice}-byte slice out`);
});

test('a slice counts its frames\' data, not their headers: 8 chunks\' worth of raw frames go in one PATCH, not seven', async () => {
  // Raw frames (level 0, as --compress auto sends on a LAN) of random data are each a chunk plus a 72-byte header;
  // counted whole, a limit of 8 chunks took 7 frames, and at the push's 8 MiB with 4 MiB chunks one frame a PATCH.
  const chunk = 65536;
  const raw = crypto.randomBytes(32 * chunk);
  const { source, done } = sourceFor(raw, chunk, 8 * chunk, { recycled: [] });
  const { slices } = await drain(source, 8 * chunk);
  await done;
  const parser = new FrameParser({ chunkSize: chunk });
  // Slices end on frame boundaries: what one parser makes of each slice is its frames.
  const perSlice = slices.map((s) => parser.push(s).filter((f) => f.kind === 'data').length);
  // The slow start: 1, 2, 4 frames, then the limit.
  assert.deepEqual(perSlice.slice(0, 4), [1, 2, 4, 8], `frames per slice: ${perSlice.join(', ')}`);
  assert.ok(slices.every((s) => s.length <= 8 * chunk + 8 * 72 + 64), 'no slice over the limit by more than its frames\' framing');
});

test('with a synced offset behind the acknowledged one, the source keeps the bytes after it: a power cut on the server costs nothing', async () => {
  const raw = crypto.randomBytes(24 * 65536);
  const frame = 72 + 65536;
  const maxSlice = 2 * frame;
  const { source, done } = sourceFor(raw, 65536, maxSlice);
  // As the server that syncs after answering says it: each answer's synced offset is where the PATCH before began.
  const starts: number[] = [];
  let offset = 0;
  const sent: Buffer[] = [];
  for (let i = 0; i < 6; i++) {
    const { value } = await source.slice(offset, offset + maxSlice);
    const bytes = Buffer.concat(value!.pieces);
    sent.push(bytes);
    starts.push(offset);
    offset += bytes.length;
    source.synced(starts.at(-2) ?? 0);
  }
  // The power cut took back what had not been synced: the server comes back at the last synced offset.
  const syncedTo = starts.at(-2)!;
  const again = await source.slice(syncedTo, syncedTo + maxSlice);
  const whole = Buffer.concat(sent);
  assert.deepEqual(Buffer.concat(again.value!.pieces), whole.subarray(syncedTo, syncedTo + again.value!.size), 'the same bytes again, from the synced offset');
  // Before it, the bytes are gone: the server had them on disk.
  await assert.rejects(source.slice(starts.at(-3)!, starts.at(-3)! + maxSlice), /already acknowledged/);
  await readToEnd(source, syncedTo + again.value!.size, maxSlice);
  await done;
});

test('without a synced offset, and with one that never moves, the source keeps no more than it may', async () => {
  const raw = crypto.randomBytes(24 * 65536);
  const frame = 72 + 65536;
  const maxSlice = 2 * frame;
  // Never said: the acknowledged offset is on disk (a server that answers after its sync), as before.
  {
    const { source, done } = sourceFor(raw, 65536, maxSlice);
    const first = await source.slice(0, maxSlice);
    await source.slice(first.value!.size, first.value!.size + maxSlice);
    await assert.rejects(source.slice(0, maxSlice), /already acknowledged/);
    await readToEnd(source, first.value!.size, maxSlice);
    await done;
  }
  // Said once, at 0, and never again: the source holds two slices back at most, not the whole stream.
  {
    const { source, done } = sourceFor(raw, 65536, maxSlice);
    source.synced(0);
    let offset = 0;
    let lastStart = 0;
    for (let i = 0; i < 8; i++) {
      const { value } = await source.slice(offset, offset + maxSlice);
      lastStart = offset;
      offset += value!.size;
    }
    assert.ok(lastStart - 2 * maxSlice > 0);
    await assert.rejects(source.slice(lastStart - 2 * maxSlice - frame, offset), /already acknowledged/);
    const oldest = await source.slice(lastStart - 2 * maxSlice, offset);
    assert.ok(oldest.value!.size > 0);
    await readToEnd(source, offset, maxSlice);
    await done;
  }
});

/** Slices on from `offset` to the end frame, as tus-js-client goes on after a resume. */
async function readToEnd(source: FramedUploadSource, offset: number, maxSlice: number): Promise<void> {
  for (;;) {
    const { value, done } = await source.slice(offset, offset + maxSlice);
    if (value) offset += value.size;
    if (done) return;
  }
}
