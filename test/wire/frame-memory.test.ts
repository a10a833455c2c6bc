// Streams 200 MiB through FrameEncoder and FrameDecoder and checks that memory stays bounded by a few chunks,
// i.e. nothing in the pipeline buffers a whole send stream.
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { describe, it } from 'node:test';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { FrameDecoder } from '../../core/wire/frame-decoder.ts';
import { FrameEncoder } from '../../core/wire/frame-encoder.ts';
import { MiB, compressibleBytes } from './frame-helpers.ts';

const TOTAL = 200 * MiB;
const SLICE = 1 * MiB;

// A forced GC before each sample measures what the pipeline holds, not garbage that V8 has not collected yet.
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;
const live = (): number => {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

describe('memory', () => {
  it('200 MiB through encoder and decoder: output equals input, memory stays bounded', async () => {
    const text = compressibleBytes(SLICE + 12345);
    const inHash = createHash('sha256');
    const outHash = createHash('sha256');
    let produced = 0;
    const source = new Readable({
      read() {
        if (produced >= TOTAL) return void this.push(null);
        // 8 MiB runs of random bytes (stored raw) and of text (zstd), in slices that do not line up with chunks.
        const len = Math.min(SLICE + 12345, TOTAL - produced);
        const data = Math.floor(produced / (8 * MiB)) % 2 === 0 ? randomBytes(len) : text.subarray(0, len);
        inHash.update(data);
        produced += len;
        this.push(data);
      },
    });
    let received = 0;
    let writes = 0;
    const samples: number[] = [];
    let peakRss = 0;
    const sink = new Writable({
      write(chunk: Buffer, _enc, cb) {
        outHash.update(chunk);
        received += chunk.length;
        if (writes++ % 4 === 0) {
          gc();
          samples.push(live());
        }
        peakRss = Math.max(peakRss, process.memoryUsage.rss());
        cb();
      },
    });
    gc();
    const baseLive = live();
    const baseRss = process.memoryUsage.rss();
    const codecs = new Set<string>();
    const encoder = new FrameEncoder({ chunkSize: 4 * MiB, onFrame: (f) => codecs.add(f.codec) });
    await pipeline(source, encoder, new FrameDecoder({ chunkSize: 4 * MiB }), sink);
    assert.equal(received, TOTAL);
    assert.deepEqual([...codecs].sort(), ['raw', 'zstd']);
    assert.deepEqual(outHash.digest(), inHash.digest());
    // Steady state, about five 4 MiB chunks: the encoder's chunk being filled and its zstd scratch, the decoder's
    // current raw chunk, and the 1-2 MiB slices queued between the stages. A single sample can catch a GC that has
    // not swept yet, hence a median and a looser peak; a pipeline that kept the stream would fail both.
    const held = samples.map((v) => v - baseLive).sort((a, b) => a - b);
    const median = held[held.length >> 1] as number;
    const peak = held.at(-1) as number;
    assert.ok(median < 32 * MiB, `the pipeline held ${(median / MiB).toFixed(1)} MiB (median)`);
    assert.ok(peak < 96 * MiB, `the pipeline held ${(peak / MiB).toFixed(1)} MiB (peak)`);
    const rss = peakRss - baseRss;
    assert.ok(rss < 150 * MiB, `rss grew by ${(rss / MiB).toFixed(1)} MiB`);
  });
});
