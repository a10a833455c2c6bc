/**
 * What the receive's pipeline holds on its way to a slow btrfs receive: a zstd frame decodes into one buffer of the
 * chunk size, and each stream stage after the source keeps a whole written chunk and a whole pushed one whatever its
 * high-water mark. The source hands frames on in pieces of at most MAX_PIECE bytes, so that the stages hold pieces,
 * not frames (peak RSS of serve, docs/performance.md, issue 22); the bytes are the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { LiveStreamSource, MAX_PIECE } from '../../server/live-source.ts';
import { compressibleBytes, encode, parseAll, KiB } from '../wire/frame-helpers.ts';

const CHUNK = 4096 * KiB;

test('a slow receive: the stages after the source hold pieces of frames, not whole decoded frames, and get every byte', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-live-pieces-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const raw = compressibleBytes(12 * CHUNK + 1000);
  const { wire } = await encode(raw, { chunkSize: CHUNK, level: 1 });
  const frames = parseAll(wire, [wire.length], { keepRaw: true });
  const data = frames.filter((f) => f.kind === 'data');
  assert.ok(data.every((f) => f.codec === 'zstd' && f.raw?.length === 1), 'every frame is zstd, decoded into one buffer');
  const file = path.join(dir, 'spool');
  await fs.writeFile(file, '');

  const source = new LiveStreamSource(file, CHUNK, 2 * CHUNK);
  // The send-stream check and the renamer (Transforms), then the pipe to btrfs receive, which takes 100 MB/s.
  const stages = [new PassThrough(), new PassThrough()];
  const got: Buffer[] = [];
  let largest = 0;
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      got.push(chunk);
      largest = Math.max(largest, chunk.length);
      setTimeout(done, chunk.length / 100_000);
    },
  });
  const piped = pipeline(source, stages[0]!, stages[1]!, sink);
  let mostHeld = 0;
  const sampler = setInterval(() => {
    const held = stages.reduce((n, s) => n + s.writableLength + s.readableLength, 0) + sink.writableLength;
    mostHeld = Math.max(mostHeld, held);
  }, 1);
  t.after(() => clearInterval(sampler));
  for (const frame of data) {
    await fs.appendFile(file, wire.subarray(frame.wireStart, frame.wireEnd));
    await source.roomFor(frame, 10_000);
    source.offer(frame);
  }
  const end = frames.at(-1)!;
  await fs.appendFile(file, wire.subarray(end.wireStart));
  source.advance(wire.length, true);
  await piped;
  clearInterval(sampler);
  assert.deepEqual(Buffer.concat(got), raw, 'the receive got the stream, byte for byte');
  assert.equal(source.spoolBytesRead, wire.length - end.wireStart, 'no frame was read back: the test paced the upload');
  assert.ok(largest <= MAX_PIECE, `no stage saw more than ${MAX_PIECE} bytes at once (largest: ${largest})`);
  // Two pieces a stage and the one being written (5 MiB here). Whole frames were two a stage: 20 MiB.
  assert.ok(mostHeld < 2 * CHUNK, `the stages after the source held up to ${mostHeld} bytes, two frames or more`);
});
