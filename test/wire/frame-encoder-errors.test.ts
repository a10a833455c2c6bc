/**
 * FrameEncoder error paths, one rule each: an error while flushing or in the compression pool ends the stream with
 * that error (never a stream that looks complete), nothing is pushed or reported after the stream is destroyed, and
 * a worker answering while nothing waits for room is no error.
 */
import assert from 'node:assert/strict';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { after, describe, it } from 'node:test';
import { CompressionPool, CompressionPoolClosed } from '../../core/wire/compression-pool.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import type { EncodedFrameInfo, FrameEncoderOptions } from '../../core/wire/frame-encoder.ts';
import { KiB, compressibleBytes } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

/** Runs `raw` through an encoder to a sink; resolves with the frames reported, or rejects with the stream's error. */
async function run(raw: Buffer, opts: FrameEncoderOptions): Promise<EncodedFrameInfo[]> {
  const frames: EncodedFrameInfo[] = [];
  const enc = new FrameEncoder({ chunkSize: CHUNK, ...opts });
  enc.on('frame', (f: EncodedFrameInfo) => frames.push(f));
  const sink = new Writable({ write: (_c, _e, cb) => cb() });
  await pipeline(Readable.from([raw]), enc, sink);
  return frames;
}

describe('FrameEncoder errors while flushing', () => {
  it('an error compressing the short last chunk fails the stream (no end frame)', async () => {
    const boom = new Error('level chooser failed on the last chunk');
    let calls = 0;
    const level = {
      next: () => {
        if (++calls === 2) throw boom;
        return 1;
      },
      observe: () => {},
    };
    // One full chunk (written in _transform), then 10 bytes that only _flush turns into a chunk.
    await assert.rejects(run(compressibleBytes(CHUNK + 10), { level }), (err) => err === boom);
    assert.equal(calls, 2);
  });

  it('an error reporting the end frame fails the stream', async () => {
    const boom = new Error('onFrame failed on the end frame');
    const onFrame = (f: EncodedFrameInfo) => {
      if (f.kind === 'end') throw boom;
    };
    await assert.rejects(run(compressibleBytes(CHUNK + 10), { onFrame }), (err) => err === boom);
  });
});

describe('FrameEncoder errors in the compression pool', () => {
  const pool = new CompressionPool(1);
  after(() => pool.close());

  it('a pool that fails a job destroys the stream with its error', async () => {
    const closed = new CompressionPool(1);
    await closed.close();
    await assert.rejects(run(compressibleBytes(2 * CHUNK), { pool: closed }), CompressionPoolClosed);
  });

  it('an error pushing a finished job destroys the stream with that error', async () => {
    const boom = new Error('onFrame failed on a pooled frame');
    const onFrame = (f: EncodedFrameInfo) => {
      if (f.index === 1) throw boom;
    };
    await assert.rejects(run(compressibleBytes(3 * CHUNK), { pool, onFrame }), (err) => err === boom);
  });

  it('a job finishing after the stream was destroyed pushes and reports nothing', async () => {
    const seen: EncodedFrameInfo[] = [];
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, onFrame: (f) => seen.push(f) });
    enc.on('error', () => {});
    enc.write(compressibleBytes(CHUNK));
    enc.destroy();
    // The job went to the (one) worker before the destroy; a later job on the same worker comes back after it.
    await pool.run(Buffer.alloc(16), 1);
    assert.deepEqual(seen, []);
    assert.equal(enc.readableLength, 0);
  });

  it('a job finishing while nothing waits for room is pushed, and the stream goes on', async () => {
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool });
    const out: Buffer[] = [];
    enc.on('data', (b: Buffer) => out.push(b));
    const first = new Promise<EncodedFrameInfo>((resolve) => enc.once('frame', resolve));
    // One chunk: fewer jobs than workers + 1, and nothing unread yet, so the write completes at once and no one
    // waits for room when the worker answers.
    enc.write(compressibleBytes(CHUNK));
    assert.equal((await first).index, 0);
    const ended = new Promise((resolve, reject) => enc.once('end', resolve).once('error', reject));
    enc.end();
    await ended;
    assert.ok(out.length >= 3, 'header, payload and end frame');
  });
});
