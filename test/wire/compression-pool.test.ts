import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { CompressionPool, CompressionPoolClosed } from '../../core/wire/compression-pool.ts';
import type { CompressionSample, LevelChooser } from '../../core/wire/frame-encoder.ts';
import { sha256 } from '../../core/wire/chain.ts';
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
    const parts = await pool.run(view, 3);
    assert.ok(parts.rawHash.equals(expected));
    assert.equal(big.length, 256 * KiB, 'the caller still has its buffer');
    assert.ok(sha256(view).equals(expected));
  });

  it('rejects bad levels at once, and jobs after close', async () => {
    assert.throws(() => pool.run(Buffer.alloc(10), 99), RangeError);
    const closing = new CompressionPool(1);
    await closing.run(Buffer.alloc(100), 1);
    await closing.close();
    await assert.rejects(closing.run(Buffer.alloc(100), 1), CompressionPoolClosed);
  });
});
