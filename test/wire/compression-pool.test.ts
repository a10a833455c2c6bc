import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CompressionPool, CompressionPoolClosed, RETIRE_AFTER_JOBS, WORKERS_FROM_LEVEL } from '../../core/wire/compression-pool.ts';
import type { CompressionSample, LevelChooser } from '../../core/wire/frame-encoder.ts';
import { sha256 } from '../../core/wire/chain.ts';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import { KiB, compressibleBytes, decode, encode, mixedBytes, randomSizes } from './frame-helpers.ts';

/** Cycles through levels, recording what the encoder reports back. */
function cyclingChooser(levels: number[]): LevelChooser & { seen: CompressionSample[] } {
  let i = 0;
  const seen: CompressionSample[] = [];
  return { seen, next: () => levels[i++ % levels.length]!, observe: (s) => seen.push(s) };
}

describe('compression pool', () => {
  const pool = new CompressionPool(2);
  after(() => pool.close());

  it('frames made on workers equal the frames made on this thread, byte for byte', async () => {
    const chunkSize = 64 * KiB;
    const raw = mixedBytes(37 * chunkSize + 999, 3 * chunkSize + 5);
    const here = await encode(raw, { chunkSize, level: 5 });
    const pooled = await encode(raw, { chunkSize, level: 5, pool }, randomSizes(11, 300 * KiB));
    assert.ok(pooled.wire.equals(here.wire), 'same bytes whatever thread compressed them');
    assert.deepEqual(
      pooled.frames.map((f) => [f.index, f.wireOffset, f.codec]),
      here.frames.map((f) => [f.index, f.wireOffset, f.codec]),
    );
    assert.deepEqual(await decode(pooled.wire, chunkSize), raw);
  });

  it('takes a level per frame from the chooser (0 sends raw) and reports each frame back', async () => {
    const chunkSize = 64 * KiB;
    const raw = compressibleBytes(9 * chunkSize);
    const chooser = cyclingChooser([0, 1, 19]);
    const { wire, frames } = await encode(raw, { chunkSize, level: chooser, pool });
    assert.deepEqual(await decode(wire, chunkSize), raw);
    const data = frames.filter((f) => f.kind === 'data');
    assert.deepEqual(data.map((f) => f.codec), ['raw', 'zstd', 'zstd', 'raw', 'zstd', 'zstd', 'raw', 'zstd', 'zstd']);
    assert.deepEqual(chooser.seen.map((s) => s.level), [0, 1, 19, 0, 1, 19, 0, 1, 19]);
    assert.ok(chooser.seen.every((s) => s.rawLength === chunkSize && s.compressNs >= 0));
    assert.ok(chooser.seen[2]!.payloadLength <= chooser.seen[1]!.payloadLength, 'level 19 is no bigger than level 1');
  });

  it('hashes on the worker, and copies views of bigger buffers instead of detaching them', async () => {
    const big = compressibleBytes(256 * KiB);
    const view = big.subarray(1000, 1000 + 64 * KiB);
    const expected = sha256(view);
    const parts = await pool.run(view, WORKERS_FROM_LEVEL);
    assert.ok(parts.rawHash.equals(expected));
    assert.equal(big.length, 256 * KiB, 'the caller still has its buffer');
    assert.ok(sha256(view).equals(expected));
  });

  for (const level of [WORKERS_FROM_LEVEL - 1, WORKERS_FROM_LEVEL]) it(`a slow consumer holds the encoder back: frames do not pile up compressed ahead of it (level ${level})`, async (t) => {
    const chunkSize = 64 * KiB;
    const raw = mixedBytes(64 * chunkSize, chunkSize);
    let framed = 0;
    let consumed = 0;
    let mostAhead = 0;
    const encoder = new FrameEncoder({ chunkSize, level, pool, onFrame: () => framed++ });
    const slow = new Writable({
      highWaterMark: 1,
      async write(chunk: Buffer, _encoding, callback) {
        // A header and a payload per frame: count frames by their headers (72 bytes).
        if (chunk.length === 72) consumed++;
        mostAhead = Math.max(mostAhead, framed - consumed);
        await sleep(2);
        callback();
      },
    });
    // In pieces as btrfs send's stdout comes (one big buffer would hand the pool every chunk in one write).
    const pieces = Array.from({ length: raw.length / (16 * KiB) }, (_, i) => raw.subarray(i * 16 * KiB, (i + 1) * 16 * KiB));
    await pipeline(Readable.from(pieces), encoder, slow);
    assert.equal(framed, 65, '64 data frames and the end frame');
    t.diagnostic(`at most ${mostAhead} frames ahead`);
    assert.ok(mostAhead <= 2 * pool.inUse + 4, `the encoder ran ${mostAhead} frames ahead of its consumer`);
  });

  for (const level of [WORKERS_FROM_LEVEL - 1, WORKERS_FROM_LEVEL]) it(`a zstd payload's memory, once recycled, is where a later payload is made (level ${level})`, async () => {
    // As an upload does (client/upload/source.ts): each frame read, then handed back once the server holds it.
    const own = new CompressionPool(1);
    try {
      const chunkSize = 64 * KiB;
      const raw = compressibleBytes(40 * chunkSize);
      const encoder = new FrameEncoder({ chunkSize, level, pool: own });
      const out: Buffer[] = [];
      const acknowledging = new Writable({
        write(chunk: Buffer, _enc, cb) {
          out.push(Buffer.from(chunk));
          encoder.recycle(chunk);
          cb();
        },
      });
      const pieces = Array.from({ length: raw.length / (16 * KiB) }, (_, i) => raw.subarray(i * 16 * KiB, (i + 1) * 16 * KiB));
      await pipeline(Readable.from(pieces), encoder, acknowledging);
      assert.deepEqual(await decode(Buffer.concat(out), chunkSize), raw);
      const { payloads, fresh } = own.payloadCounts;
      assert.equal(payloads, 40);
      // New memory only for the payloads made before the first one came back: the jobs in flight and a frame read.
      assert.ok(fresh <= own.inUse + 3, `${fresh} of ${payloads} payloads in new memory`);
    } finally {
      await own.close();
    }
  });

  for (const level of [WORKERS_FROM_LEVEL - 1, WORKERS_FROM_LEVEL]) it(`takes back only the whole of its own payloads (level ${level})`, async () => {
    const own = new CompressionPool(1);
    try {
      const chunk = (): Buffer => compressibleBytes(64 * KiB);
      const first = await own.run(chunk(), level);
      assert.equal(first.codec, 'zstd');
      const memory = first.payload.buffer;
      own.recycle(first.payload.subarray(0, 10)); // a piece that does not end the payload: still in use
      own.recycle(Buffer.alloc(first.payload.length)); // memory of its own, not the pool's
      const second = await own.run(chunk(), level);
      assert.deepEqual(own.payloadCounts, { payloads: 2, fresh: 2 });
      own.recycle(first.payload.subarray(10)); // the rest: the whole payload is back
      const third = await own.run(chunk(), level);
      assert.deepEqual(own.payloadCounts, { payloads: 3, fresh: 2 });
      if (level >= WORKERS_FROM_LEVEL) assert.equal(first.payload.length, 0, 'the memory moved to the worker');
      else assert.equal(third.payload.buffer, memory, 'the third payload is made in the first one\'s memory');
      assert.notEqual(second.payload.buffer, memory);
    } finally {
      await own.close();
    }
  });

  for (const level of [WORKERS_FROM_LEVEL - 1, WORKERS_FROM_LEVEL]) it(`lets payload memory go once a long spell of raw frames has stopped the workers (level ${level})`, async () => {
    const own = new CompressionPool(1);
    try {
      const zstd = await own.run(compressibleBytes(64 * KiB), level);
      const inFlight = await own.run(compressibleBytes(64 * KiB), level);
      own.recycle(zstd.payload);
      assert.ok(own.heldPayloadBytes > 0, 'held for the next job');
      for (let i = 0; i < RETIRE_AFTER_JOBS; i++) await own.run(compressibleBytes(64 * KiB), 0);
      assert.equal(own.workersStarted, 0);
      assert.equal(own.heldPayloadBytes, 0, 'no job will take it back');
      own.recycle(inFlight.payload);
      assert.equal(own.heldPayloadBytes, 0, 'nor a payload acknowledged after');
    } finally {
      await own.close();
    }
  });

  it('rejects bad levels at once, and jobs after close', async () => {
    assert.throws(() => pool.run(Buffer.alloc(10), 99), RangeError);
    const closing = new CompressionPool(1);
    await closing.run(Buffer.alloc(100), WORKERS_FROM_LEVEL);
    await closing.close();
    await assert.rejects(closing.run(Buffer.alloc(100), 1), CompressionPoolClosed);
    await assert.rejects(closing.run(Buffer.alloc(100), WORKERS_FROM_LEVEL), CompressionPoolClosed);
  });
});

describe('FrameEncoder on a pool, read slowly', () => {
  const pool = new CompressionPool(2);
  after(() => pool.close());

  it('holds back its input while a chunk of frames is unread, and still ends', async () => {
    const chunkSize = 64 * KiB;
    const raw = compressibleBytes(40 * chunkSize);
    const encoder = new FrameEncoder({ chunkSize, level: 3, pool });
    let held = 0;
    const out: Buffer[] = [];
    const slowReader = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        held = Math.max(held, encoder.readableLength);
        out.push(chunk);
        setTimeout(cb, 5);
      },
    });
    // Input in pipe-sized pieces, far faster than the reader: frames come back from the workers while it sleeps.
    const pieces = Array.from({ length: raw.length / (16 * KiB) }, (_, i) => raw.subarray(i * 16 * KiB, (i + 1) * 16 * KiB));
    await pipeline(Readable.from(pieces), encoder, slowReader);
    // At most a chunk of frames waiting, plus the frames of the jobs that were in flight when it was reached.
    assert.ok(held <= (pool.inUse + 2) * (chunkSize + 72), `held ${held} bytes unread`);
    assert.deepEqual(await decode(Buffer.concat(out), chunkSize), raw);
  });
});
