/**
 * FrameParser.pushAsync, the server spool's way in (the chunk hash taken on libuv's pool, core/wire/pooled-sha256.ts):
 * it verifies exactly what push() verifies, delivers no frame before its hash came back and matched, and a parser it
 * failed stays failed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { sha256 } from '../../core/wire/chain.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/frame.ts';
import { FrameError } from '../../core/wire/frame-error.ts';
import { FrameParser, type VerifiedFrame } from '../../core/wire/frame-parser.ts';
import { sha256Pooled } from '../../core/wire/pooled-sha256.ts';
import { KiB, encode, mixedBytes, parseAll, randomSizes, seededBytes, slices } from './frame-helpers.ts';

const CHUNK = 64 * KiB;

async function parseAllAsync(wire: Buffer, sizes: number[], digest = sha256Pooled): Promise<VerifiedFrame[]> {
  const parser = new FrameParser({ keepRaw: true });
  const frames: VerifiedFrame[] = [];
  for (const s of slices(wire, sizes)) frames.push(...(await parser.pushAsync(s, digest)));
  parser.finish();
  return frames;
}

test('pushAsync verifies the same frames as push, in any slicing, zstd and raw frames alike', async () => {
  const { wire } = await encode(mixedBytes(5 * CHUNK + 333, CHUNK), { chunkSize: CHUNK, level: 1 });
  const expected = parseAll(wire, [64 * KiB], { keepRaw: true });
  assert.deepEqual(new Set(expected.map((f) => f.codec)), new Set(['raw', 'zstd']));
  for (const sizes of [[1000], randomSizes(50, 20_000, 11), [wire.length]]) {
    assert.deepEqual(await parseAllAsync(wire, sizes), expected);
  }
});

test('pushAsync refuses a frame whose chunk does not hash to its header, delivers none after it, and stays failed', async () => {
  const { wire } = await encode(seededBytes(3 * CHUNK, 9), { chunkSize: CHUNK, level: 1 });
  const bad = Buffer.from(wire);
  // Frame 1's payload (random bytes go raw, so every frame is header + CHUNK bytes): decodes, but hashes otherwise.
  const frame1Payload = 2 * FRAME_HEADER_SIZE + CHUNK + 10;
  bad[frame1Payload] = (bad[frame1Payload] as number) ^ 0x40;
  const parser = new FrameParser();
  const delivered: number[] = [];
  let caught: unknown;
  try {
    for (const s of slices(bad, [40_000])) for (const f of await parser.pushAsync(s, sha256Pooled)) delivered.push(f.index);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught instanceof FrameError, String(caught));
  assert.equal(caught.code, 'frame_corrupt');
  assert.deepEqual(delivered, [0]);
  assert.equal(parser.state().framesVerified, 1);
  await assert.rejects(parser.pushAsync(Buffer.alloc(1), sha256Pooled), (err) => err === caught);
  assert.throws(() => parser.push(Buffer.alloc(1)), (err) => err === caught);
});

test('the hash pushAsync compares is the digest it was given, and a digest that fails fails the parser', async () => {
  const { wire } = await encode(seededBytes(2 * CHUNK, 4), { chunkSize: CHUNK, level: 1 });
  // A digest that answers for other bytes: the frame must not pass on the header's word.
  await assert.rejects(parseAllAsync(wire, [wire.length], async (raw) => sha256(Buffer.concat([raw, Buffer.of(0)]))), {
    code: 'frame_corrupt',
  });
  const parser = new FrameParser();
  const boom = new Error('pool gone');
  await assert.rejects(parser.pushAsync(wire, () => Promise.reject(boom)), (err) => err === boom);
  assert.throws(() => parser.push(Buffer.alloc(1)), (err) => err === boom);
});

test('no other push may start while a pushAsync waits for a hash', async () => {
  const { wire } = await encode(seededBytes(CHUNK, 2), { chunkSize: CHUNK, level: 1 });
  const parser = new FrameParser();
  let release: () => void = () => {};
  const gate = new Promise<void>((r) => (release = r));
  const pushing = parser.pushAsync(wire, async (raw) => {
    await gate;
    return sha256(raw);
  });
  assert.throws(() => parser.push(Buffer.alloc(1)), /pushAsync is in progress/);
  await assert.rejects(parser.pushAsync(Buffer.alloc(1), sha256Pooled), /another push is in progress/);
  release();
  assert.deepEqual((await pushing).map((f) => [f.kind, f.index]), [['data', 0], ['end', 1]]);
});
