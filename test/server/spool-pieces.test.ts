/**
 * A raw frame leaves the parser as the network pieces it arrived in (core/wire/frame-parser.ts), not copied into one
 * buffer: however a stream is cut into request body chunks, the spool must verify the same frames, hand the sink the
 * same bytes, and store a spool and an index byte-identical to the same stream sent in one piece. Property-based
 * (fast-check), on a real folder, with raw and zstd frames; pieces tiny enough to pass the parser's cap on pieces per
 * frame (MAX_RAW_PIECES, where they are joined) are among the cases.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import fc from 'fast-check';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { MAX_RAW_PIECES } from '../../core/wire/frame-parser.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';

const CHUNK = 64 * 1024;
const ID = 'e'.repeat(32);

interface Stored {
  spool: Buffer;
  index: Buffer;
  /** What the sink was handed: frame 0's bytes, and each stored frame's index, codec, bytes and chain. */
  handed: string[];
}

async function appendInPieces(t: TestContext, wire: Buffer, pieces: Buffer[]): Promise<Stored> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-pieces-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  const spool = new Spool(layout);
  await spool.create(ID);
  const handed: string[] = [];
  const sink: FrameSink = {
    start: (frame) => void handed.push(`start ${Buffer.concat(frame.raw ?? []).toString('hex')}`),
    // Copied here: nothing of the frame's memory is read after this returns.
    stored: (frame) => {
      handed.push(`${frame.index} ${frame.codec} ${Buffer.concat(frame.raw ?? []).toString('hex')} ${frame.chain.toString('hex')}`);
      return false;
    },
    complete: (p) => void handed.push(`complete ${p.framesVerified} ${p.wireOffset}`),
    endRefused: (err) => void handed.push(`endRefused ${err.code}`),
  };
  const end = await spool.append(ID, Readable.from(pieces), 0, CHUNK, sink);
  assert.equal(end, wire.length);
  return { spool: await fs.readFile(layout.spoolFile(ID)), index: await fs.readFile(layout.frameIndexFile(ID)), handed };
}

/** `wire` cut at the given offsets (any order, repeats allowed). */
function cutAt(wire: Buffer, cuts: number[]): Buffer[] {
  const at = [...new Set(cuts.filter((c) => c > 0 && c < wire.length))].sort((a, b) => a - b);
  return [0, ...at].map((from, i) => Buffer.from(wire.subarray(from, at[i] ?? wire.length)));
}

/** `wire` in pieces of the given sizes, cycling through them. */
function inSizes(wire: Buffer, sizes: number[]): Buffer[] {
  const out: Buffer[] = [];
  for (let from = 0, i = 0; from < wire.length; i++) {
    const n = sizes[i % sizes.length] as number;
    out.push(Buffer.from(wire.subarray(from, from + n)));
    from += n;
  }
  return out;
}

test('a stream cut into any network pieces verifies, and is stored byte-identical to the stream in one piece', async (t) => {
  const raw = mixedBytes(4 * CHUNK + 1000, CHUNK);
  const { wire, frames } = await encode(raw, { chunkSize: CHUNK, level: 1 });
  assert.deepEqual(frames.map((f) => f.codec), ['zstd', 'raw', 'zstd', 'raw', 'zstd', 'raw'], 'raw and zstd frames both');
  const whole = await appendInPieces(t, wire, [Buffer.from(wire)]);
  assert.deepEqual(whole.spool, wire);
  assert.equal(whole.handed.length, 1 + 5 + 1);

  // Tiny pieces: a 64 KiB raw frame in more than MAX_RAW_PIECES of them is joined by the parser.
  const tiny = fc.array(fc.integer({ min: 1, max: Math.floor(CHUNK / MAX_RAW_PIECES) - 1 }), { minLength: 1, maxLength: 8 });
  const pieces = fc.oneof(
    fc.array(fc.integer({ min: 1, max: wire.length - 1 }), { maxLength: 60 }).map((cuts) => cutAt(wire, cuts)),
    fc.array(fc.integer({ min: 1, max: 3 * CHUNK }), { minLength: 1, maxLength: 10 }).map((sizes) => inSizes(wire, sizes)),
    tiny.map((sizes) => inSizes(wire, sizes)),
  );
  await fc.assert(
    fc.asyncProperty(pieces, async (body) => {
      const got = await appendInPieces(t, wire, body);
      assert.deepEqual(got.handed, whole.handed);
      assert.ok(got.spool.equals(whole.spool), 'the spool holds the same bytes');
      assert.ok(got.index.equals(whole.index), 'the index holds the same records');
    }),
    { numRuns: 40 },
  );
});
