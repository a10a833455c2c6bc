/**
 * The receive's source on real spool files: frames offered as the store writes them go straight through, a source
 * that is behind reads the spool back and verifies it, and nothing ends before a verified end frame.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameError } from '../../core/wire/index.ts';
import { LiveStreamSource } from '../../server/live-source.ts';
import { encode, mixedBytes, parseAll, KiB } from '../wire/frame-helpers.ts';

const CHUNK = 64 * KiB;

async function spoolIn(t: { after(fn: () => Promise<void>): void }) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-live-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const raw = mixedBytes(10 * CHUNK + 1000, 2 * CHUNK);
  const { wire } = await encode(raw, { chunkSize: CHUNK, level: 1 });
  const frames = parseAll(wire, [wire.length], { keepRaw: true });
  return { file: path.join(dir, 'spool'), raw, wire, frames, data: frames.filter((f) => f.kind === 'data'), end: frames.at(-1)! };
}

function collect(source: LiveStreamSource): { bytes: () => Buffer; done: Promise<Buffer> } {
  const parts: Buffer[] = [];
  source.on('data', (b: Buffer) => parts.push(b));
  const done = new Promise<Buffer>((resolve, reject) => {
    source.once('end', () => resolve(Buffer.concat(parts)));
    source.once('error', reject);
  });
  done.catch(() => undefined);
  return { bytes: () => Buffer.concat(parts), done };
}

test('frames offered as the store writes them go straight through; only the end frame is read back', async (t) => {
  const { file, raw, wire, data, end } = await spoolIn(t);
  await fs.writeFile(file, '');
  const source = new LiveStreamSource(file, CHUNK);
  const out = collect(source);
  for (const frame of data) {
    await fs.appendFile(file, wire.subarray(frame.wireStart, frame.wireEnd));
    source.offer(frame);
    await sleep(1);
  }
  await fs.appendFile(file, wire.subarray(end.wireStart));
  await sleep(50);
  assert.deepEqual(out.bytes(), raw, 'every data frame handed on');
  source.advance(wire.length, true);
  assert.deepEqual(await out.done, raw);
  assert.equal(source.spoolBytesRead, wire.length - end.wireStart, 'only the end frame came from the spool');
  assert.equal(source.wireRead, wire.length);
});

test('a source that starts behind reads the spool back, then takes frames from memory once it has caught up', async (t) => {
  const { file, raw, wire, data, end } = await spoolIn(t);
  const half = data[5]!.wireEnd;
  await fs.writeFile(file, wire.subarray(0, half));
  const source = new LiveStreamSource(file, CHUNK);
  const out = collect(source);
  source.advance(half, false);
  await sleep(50);
  assert.equal(out.bytes().length, data[5]!.rawOffset + data[5]!.rawLength, 'caught up from the spool');
  for (const frame of data.slice(6)) {
    await fs.appendFile(file, wire.subarray(frame.wireStart, frame.wireEnd));
    source.offer(frame);
    await sleep(1);
  }
  await fs.appendFile(file, wire.subarray(end.wireStart));
  source.advance(wire.length, true);
  assert.deepEqual(await out.done, raw);
  assert.equal(source.spoolBytesRead, half + (wire.length - end.wireStart), 'the first half and the end frame from the spool');
});

/** Reads `source` one buffer every `everyMs`, like a receive slower than the upload; stop() ends the reading. */
function slowReader(source: LiveStreamSource, everyMs: number) {
  const parts: Buffer[] = [];
  let stopped = false;
  const done = (async () => {
    while (!stopped && !source.readableEnded) {
      const b = source.read() as Buffer | null;
      if (b !== null) parts.push(b);
      await sleep(everyMs);
    }
  })();
  const ended = new Promise<Buffer>((resolve, reject) => {
    source.once('end', () => resolve(Buffer.concat(parts)));
    source.once('error', reject);
  });
  return { ended, stop: () => { stopped = true; return done; } };
}

test('a receive slower than the upload paces it: the store waits for room, and no frame is read back', async (t) => {
  const { file, raw, wire, data, end } = await spoolIn(t);
  await fs.writeFile(file, '');
  const source = new LiveStreamSource(file, CHUNK, 2 * CHUNK);
  const reader = slowReader(source, 15);
  let waitedFull = 0;
  for (const frame of data) {
    await fs.appendFile(file, wire.subarray(frame.wireStart, frame.wireEnd));
    if (source.readableLength >= 2 * CHUNK) waitedFull++;
    await source.roomFor(frame, 10_000);
    source.offer(frame);
  }
  assert.ok(waitedFull >= 3, `the source was full when ${waitedFull} frames came: the test must make the store wait`);
  await fs.appendFile(file, wire.subarray(end.wireStart));
  source.advance(wire.length, true);
  assert.deepEqual(await reader.ended, raw);
  await reader.stop();
  assert.equal(source.spoolBytesRead, wire.length - end.wireStart, 'only the end frame came from the spool');
});

test('a receive that takes nothing for longer than the wait falls behind; the upload goes on and the spool is read back', async (t) => {
  const { file, raw, wire, data, end } = await spoolIn(t);
  await fs.writeFile(file, '');
  const source = new LiveStreamSource(file, CHUNK, 2 * CHUNK);
  let timedOut = 0;
  for (const frame of data) {
    await fs.appendFile(file, wire.subarray(frame.wireStart, frame.wireEnd));
    let settled = false;
    const room = source.roomFor(frame, 40).then(() => (settled = true));
    // A timer set now fires in a later turn of the event loop than setImmediate's: still pending here means waiting.
    await new Promise(setImmediate);
    if (!settled) timedOut++;
    await room;
    source.offer(frame);
  }
  // The first wait runs out, and the source reads that frame back; the next frame finds it full again and waits
  // once more. Then it is behind, and the other frames go on without waiting.
  assert.ok(timedOut >= 1 && timedOut <= 2, `${timedOut} of ${data.length} waits ran out`);
  assert.ok(data.length >= 8);
  await fs.appendFile(file, wire.subarray(end.wireStart));
  source.advance(wire.length, true);
  const out = collect(source);
  assert.deepEqual(await out.done, raw);
  assert.ok(source.spoolBytesRead > wire.length - end.wireStart, 'frames that missed memory came from the spool');
});

test('bytes damaged in the spool fail with a FrameError naming the frame, before any of that frame goes on', async (t) => {
  const { file, wire, data } = await spoolIn(t);
  const damaged = Buffer.from(wire);
  const at = data[3]!.wireStart + 100;
  damaged[at] = damaged[at]! ^ 0x10;
  await fs.writeFile(file, damaged);
  const source = new LiveStreamSource(file, CHUNK);
  const out = collect(source);
  source.advance(wire.length, true);
  const err = await out.done.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof FrameError, String(err));
  assert.equal(err.details.frameIndex, 3);
  assert.equal(out.bytes().length, data[2]!.rawOffset + data[2]!.rawLength, 'frames 0-2 only');
});

test('without a verified end frame the source never ends; a damaged end frame fails it', async (t) => {
  const { file, raw, wire, data, end } = await spoolIn(t);
  await fs.writeFile(file, wire.subarray(0, end.wireStart));
  const source = new LiveStreamSource(file, CHUNK);
  const out = collect(source);
  source.advance(data.at(-1)!.wireEnd, false);
  await sleep(100);
  assert.deepEqual(out.bytes(), raw, 'every data frame, and then it waits');
  assert.equal(source.readableEnded, false);

  const badEnd = Buffer.from(wire.subarray(end.wireStart));
  badEnd[badEnd.length - 1] = badEnd[badEnd.length - 1]! ^ 0x01;
  await fs.appendFile(file, badEnd);
  source.advance(wire.length, true);
  const err = await out.done.then(() => null, (e: unknown) => e);
  assert.ok(err instanceof FrameError, String(err));
});
