/**
 * A frame that arrives in hundreds of thousands of pieces (a line that delivers a few bytes a segment, or a client
 * that writes them so) costs the spool time in proportion to its bytes, not to the square of its pieces. The spool
 * once took each frame's pieces off the front of an array one shift at a time (server/spool/frame-cutter.ts
 * takeFront), which V8 does by moving every element of an array that long: one 4 MiB frame in 16-byte pieces kept
 * the server's only thread busy for tens of seconds, reading no other request (issue 22, the slow-link stall).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { FrameCutter, takeFront } from '../../server/spool/frame-cutter.ts';
import { CHAIN_ZERO } from '../../core/wire/index.ts';
import { encode, seededBytes, MiB } from '../wire/frame-helpers.ts';

const ID = 'f'.repeat(32);
const CHUNK = 4 * MiB;
const PIECE = 16;
/**
 * The append below took 2.1 CPU s with a linear take on a loaded 2-core machine (the per-piece cost of the streams);
 * the quadratic one took 48 s. The bound sits far from both.
 */
const CPU_BOUND_S = 6;

const sink: FrameSink = { start: () => undefined, stored: () => false, complete: () => undefined, endRefused: () => undefined };

async function freshSpool(t: TestContext): Promise<{ spool: Spool; layout: ServerLayout }> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-many-pieces-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  const spool = new Spool(layout);
  await spool.create(ID);
  return { spool, layout };
}

test('a 4 MiB raw frame in 16-byte pieces is stored whole, in CPU time linear in its bytes', async (t) => {
  // Random bytes: the frame stays raw, and so leaves the parser as the pieces it came in.
  const { wire, frames } = await encode(seededBytes(CHUNK), { chunkSize: CHUNK, level: 1 });
  assert.equal(frames[0]?.codec, 'raw');
  const pieces: Buffer[] = [];
  for (let at = 0; at < wire.length; at += PIECE) pieces.push(wire.subarray(at, at + PIECE));
  const { spool, layout } = await freshSpool(t);
  const before = process.cpuUsage();
  const end = await spool.append(ID, Readable.from(pieces), 0, CHUNK, sink);
  const used = process.cpuUsage(before);
  const seconds = (used.user + used.system) / 1e6;
  t.diagnostic(`${pieces.length} pieces appended in ${seconds.toFixed(2)} CPU s`);
  assert.equal(end, wire.length, 'every frame verified');
  assert.ok((await fs.readFile(layout.spoolFile(ID))).equals(wire), 'the spool holds the stream byte for byte');
  assert.ok(seconds < CPU_BOUND_S, `${pieces.length} pieces took ${seconds.toFixed(1)} CPU s (bound ${CPU_BOUND_S})`);
});

test('takeFront takes exact lengths across and inside pieces, leaving the rest in place', () => {
  const buffers = [Buffer.from('abc'), Buffer.from('de'), Buffer.from('fgh')];
  assert.deepEqual(takeFront(buffers, 4).map(String), ['abc', 'd']);
  assert.deepEqual(buffers.map(String), ['e', 'fgh']);
  assert.deepEqual(takeFront(buffers, 4).map(String), ['e', 'fgh']);
  assert.deepEqual(buffers, []);
  const short = [Buffer.from('xy')];
  assert.throws(() => takeFront(short, 3), RangeError);
  assert.deepEqual(short, [], 'what was there is taken even when it falls short');
});

test('a frame in 1-byte network reads is held in a few pieces until it verifies, and cut byte for byte', async () => {
  const { wire, frames } = await encode(seededBytes(CHUNK), { chunkSize: CHUNK, level: 1 });
  assert.equal(frames[0]?.codec, 'raw');
  const cutter = new FrameCutter({
    state: { chunkSize: CHUNK, framesVerified: 0, wireOffsetVerified: 0, rawOffset: 0, chain: CHAIN_ZERO, ended: false },
    keepRaw: true,
  });
  // Each read its own memory, as a socket's reads are: 256 KiB of the frame, a byte at a time.
  const dribbled = 256 * 1024;
  for (let at = 0; at < dribbled; at++) {
    const read = Buffer.allocUnsafeSlow(1);
    read[0] = wire[at]!;
    assert.deepEqual(cutter.push(read).frames, []);
  }
  // Kept one Buffer per read (and again in the parser's queue), a 4 MiB frame in 1-byte reads held 1.7 GB of serve.
  const held = cutter.rest().length;
  assert.ok(held <= dribbled / (64 * 1024) + 1, `${dribbled} one-byte reads are held as ${held} pieces`);
  const { frames: cut, failure } = cutter.push(wire.subarray(dribbled));
  assert.equal(failure, null);
  assert.equal(cut.length, frames.length);
  assert.ok(Buffer.concat(cut.flatMap((c) => c.parts)).equals(wire), 'the frames are the wire bytes, byte for byte');
});
