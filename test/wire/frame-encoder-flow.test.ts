/**
 * FrameEncoder flow control with a compression pool, as a writer sees it: how many chunks may be in the workers
 * before a write waits, and that a write waits while a chunk's worth of frames is unread even though Transform's own
 * check (which only looks at what _transform pushed itself) would let it through.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { after, describe, it } from 'node:test';
import { CompressionPool, WORKERS_FROM_LEVEL } from '../../core/wire/compression-pool.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import { KiB, compressibleBytes, seededBytes } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

describe('FrameEncoder flow control with a pool', () => {
  const pool = new CompressionPool(2);
  after(() => pool.close());

  it('one chunk per worker and one more are in flight before a write waits', async () => {
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, level: WORKERS_FROM_LEVEL });
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
    assert.equal(writtenAtFirstFrame, pool.inUse + 1);
    enc.end();
    await once(enc, 'end');
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

  it('with frameBuffers, each header and payload comes as its own buffer, and a write waits while any frame is unread', async () => {
    // zstd frames are far smaller than a chunk: by bytes, several would wait unread before a write waited.
    const enc = new FrameEncoder({ chunkSize: CHUNK, pool, level: 3, frameBuffers: true });
    const first = once(enc, 'frame');
    enc.write(compressibleBytes(CHUNK));
    const [info] = (await first) as [{ payloadLength: number }];
    assert.ok(info.payloadLength < CHUNK / 4, 'a compressible chunk compresses');
    let written = false;
    const second = new Promise<void>((resolve) =>
      enc.write(compressibleBytes(CHUNK), () => {
        written = true;
        resolve();
      }),
    );
    await once(enc, 'frame');
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(written, false, 'the write completed with a frame unread');
    const header = enc.read() as Buffer;
    const payload = enc.read() as Buffer;
    assert.equal(payload.length, info.payloadLength, 'the payload is a buffer of its own');
    assert.ok(header.length < 128, 'the header is a buffer of its own');
    enc.resume();
    await second;
    enc.end();
    await once(enc, 'end');
  });
});
