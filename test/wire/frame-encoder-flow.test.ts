/**
 * FrameEncoder flow control with a compression pool, as a writer sees it: how many chunks may be in the workers
 * before a write waits, and that a write waits while a chunk's worth of frames is unread even though Transform's own
 * check (which only looks at what _transform pushed itself) would let it through. And the hold: while the level
 * chooser is blind, one chunk at a time and nothing framed ahead of the reader, until the chooser sees or the hold's
 * time is up, and never a stall.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { CompressionPool } from '../../core/wire/compression-pool.ts';
import { FrameEncoder, HOLD_LIMIT_MS } from '../../core/wire/frame-encoder.ts';
import { KiB, compressibleBytes, mixedBytes, seededBytes } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

describe('FrameEncoder flow control with a pool', () => {
  const pool = new CompressionPool(2);
  after(() => pool.close());

  it('one chunk per worker and one more are in flight before a write waits', async () => {
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool });
    let written = 0;
    let writtenAtFirstFrame = -1;
    enc.once('frame', () => {
      writtenAtFirstFrame = written;
    });
    enc.resume();
    // A worker answers in a later turn of the event loop than the write callbacks of writes that did not wait.
    const writes = [1, 2, 3, 4].map(
      () =>
        new Promise<void>((resolve) =>
          enc.write(compressibleBytes(CHUNK), () => {
            written++;
            resolve();
          }),
        ),
    );
    await Promise.all(writes);
    assert.equal(writtenAtFirstFrame, pool.size + 1);
    enc.end();
    await once(enc, 'end');
  });

  /** Writes `writes` chunks without reading; counts the frames framed once the workers had time to answer. */
  function framedBy(enc: FrameEncoder, writes: number): { framed: () => number; settled: () => Promise<void> } {
    let framed = 0;
    enc.on('frame', () => framed++);
    // Half random: each frame is about half a chunk, more than the readable side's high-water mark (16 KiB).
    for (let i = 0; i < writes; i++) enc.write(mixedBytes(CHUNK, CHUNK / 2, i));
    return { framed: () => framed, settled: () => new Promise((resolve) => setTimeout(resolve, 300)) };
  }

  /** Reads what waits to be read (paused, read() takes it all): here the one frame held. */
  function readOneFrame(enc: FrameEncoder): void {
    assert.ok(enc.read() !== null, 'a frame waits to be read');
  }

  it('while the level chooser is blind, frames one chunk at a time and nothing ahead of the reader; once it sees, as far ahead as usual', async () => {
    const seeing = new FrameEncoder({ chunkSize: CHUNK, pool, level: { next: () => 3, observe: () => undefined, blind: () => false } });
    const seen = framedBy(seeing, 6);
    await seen.settled();
    assert.ok(seen.framed() >= pool.size + 1, `not blind: a job per worker and one more, framed unread (${seen.framed()} framed)`);
    seeing.destroy();

    let blind = true;
    const levels: number[] = [];
    const chooser = { next: () => (blind ? 3 : 9), observe: (s: { level: number }) => void levels.push(s.level), blind: () => blind };
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, level: chooser });
    const { framed, settled } = framedBy(enc, 6);
    await settled();
    assert.equal(framed(), 1, 'blind: one frame, waiting for its reader');
    readOneFrame(enc);
    await settled();
    assert.equal(framed(), 2, 'blind: one frame for the one read');
    // The line is measured: at the next read, frames are framed ahead again, at the level chosen now.
    blind = false;
    readOneFrame(enc);
    await settled();
    assert.ok(framed() >= 4, `seeing: a job per worker and one more (${framed()} framed)`);
    enc.resume();
    enc.end();
    await once(enc, 'end');
    assert.deepEqual(levels, [3, 3, 9, 9, 9, 9]);
  });

  it('the hold ends after its time even if the chooser stays blind', async (t) => {
    t.mock.timers.enable({ apis: ['Date'] });
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, level: { next: () => 3, observe: () => undefined, blind: () => true } });
    const { framed, settled } = framedBy(enc, 6);
    await once(enc, 'frame');
    t.mock.timers.tick(HOLD_LIMIT_MS - 1);
    readOneFrame(enc);
    await settled();
    assert.equal(framed(), 2, 'held just before the hold\'s time is up');
    t.mock.timers.tick(1);
    readOneFrame(enc);
    await settled();
    assert.ok(framed() >= 4, `after the hold's time, framed ahead of the reader as usual (${framed()} framed)`);
    enc.destroy();
  });

  it('under the hold a read that leaves a small frame unread does not stall the stream', async () => {
    // The chooser stays blind, and the hold's time is far off: only reads and the workers' answers move the encoder.
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, level: { next: () => 3, observe: () => undefined, blind: () => true } });
    // Read as the push reads it (framed-send.ts): a PassThrough that holds one frame's header and payload, then
    // pauses the pipe. Each frame here is a few hundred bytes: when the pipe reads a header, Readable asks _read for
    // more with the payload still unread, and does not ask again until something is pushed.
    const out = new PassThrough({ writableHighWaterMark: 1, readableObjectMode: true, readableHighWaterMark: 2 });
    let frames = 0;
    enc.on('frame', () => frames++);
    const done = pipeline(Readable.from(Array.from({ length: 8 }, () => compressibleBytes(CHUNK))), enc, out);
    for await (const piece of out) {
      assert.ok(Buffer.isBuffer(piece));
      await new Promise((resolve) => setImmediate(resolve));
    }
    await done;
    assert.equal(frames, 9, 'eight data frames and the end frame');
  });

  it('a write waits while a chunk of frames is unread, and goes on once it is read', async () => {
    // Level 0: each frame carries its whole chunk, so one unread frame is more than a chunk of bytes.
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, level: 0 });
    const first = once(enc, 'frame');
    enc.write(seededBytes(CHUNK, 41));
    await first;
    assert.ok(enc.readableLength > CHUNK);
    let written = false;
    const second = new Promise<void>((resolve) =>
      enc.write(seededBytes(CHUNK, 42), () => {
        written = true;
        resolve();
      }),
    );
    await once(enc, 'frame');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(written, false, 'the write completed with a chunk of frames unread');
    enc.resume();
    await second;
    enc.end();
    await once(enc, 'end');
  });
});
