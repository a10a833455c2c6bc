/**
 * A request's bytes are copied as they arrive into chunk memory (server/spool/arrival-memory.ts) that is used again
 * once every byte of it is done: written to the spool, and, for a raw frame a receive took, taken by its pipe
 * (core/wire/chunk-memory.ts). Never sooner: a receive that still holds a frame's bytes reads them as they came.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { chunkDone, chunkMemoryCounts } from '../../core/wire/chunk-memory.ts';
import type { VerifiedFrame } from '../../core/wire/index.ts';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';

const CHUNK = 64 * 1024;
const RAW_BYTES = 3 * 1024 * 1024;

async function spoolIn(t: TestContext): Promise<Spool> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-arrival-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return new Spool(new ServerLayout(dir));
}

/** One whole stream of raw frames (`--compress none`) through a fresh spool, in 64 KiB request pieces. */
async function appendStream(spool: Spool, id: string, stored: (frame: VerifiedFrame) => boolean, seed: number): Promise<Buffer> {
  const raw = mixedBytes(RAW_BYTES, CHUNK, seed);
  const { wire } = await encode(raw, { chunkSize: CHUNK, level: 0 });
  await spool.create(id);
  const sink: FrameSink = { start: () => undefined, stored, complete: () => undefined, endRefused: () => undefined };
  const body = new PassThrough();
  const appending = spool.append(id, body, 0, CHUNK, sink);
  for (let at = 0; at < wire.length; at += 65536) body.write(wire.subarray(at, at + 65536));
  body.end();
  assert.equal(await appending, wire.length);
  return raw;
}

test("raw frames a receive took and its pipe finished with arrive in memory the next stream's bytes arrive in", async (t) => {
  const spool = await spoolIn(t);
  const seen: Buffer[] = [];
  // The receive: takes each frame, copies what it saw (as btrfs receive's pipe would have it), then its pipe is done.
  const takeAndFinish = (frame: VerifiedFrame): boolean => {
    seen.push(Buffer.concat(frame.raw ?? []));
    for (const piece of frame.raw ?? []) chunkDone(piece);
    return true;
  };
  const first = await appendStream(spool, 'a'.repeat(32), takeAndFinish, 1);
  assert.ok(Buffer.concat(seen).equals(first), 'the receive saw other bytes than the stream');
  seen.length = 0;
  const before = chunkMemoryCounts();
  const second = await appendStream(spool, 'b'.repeat(32), takeAndFinish, 2);
  assert.ok(Buffer.concat(seen).equals(second), 'the receive saw other bytes than the second stream');
  const reused = chunkMemoryCounts().reused - before.reused;
  // 3 MiB in 1 MiB slabs, and more memory of the first stream was free than the second needed.
  assert.ok(reused >= 3, `the second stream's bytes reused ${reused} slabs of memory`);
});

test('a frame nobody took is done once written: its memory is used again without a receive', async (t) => {
  const spool = await spoolIn(t);
  await appendStream(spool, 'c'.repeat(32), () => false, 3);
  const before = chunkMemoryCounts();
  await appendStream(spool, 'd'.repeat(32), () => false, 4);
  assert.ok(chunkMemoryCounts().reused - before.reused >= 3);
});

test('a frame a receive took and still holds keeps its bytes while later streams arrive', async (t) => {
  const spool = await spoolIn(t);
  const held: { frame: Buffer[]; copy: Buffer }[] = [];
  const first = await appendStream(
    spool,
    'e'.repeat(32),
    (frame) => {
      held.push({ frame: frame.raw ?? [], copy: Buffer.concat(frame.raw ?? []) });
      return true;
    },
    5,
  );
  // Later streams whose frames nobody takes: their memory goes round and round, never into the held frames'.
  for (const [i, id] of ['f', '0', '1'].entries()) await appendStream(spool, id.repeat(32), () => false, 6 + i);
  assert.ok(Buffer.concat(held.map((h) => Buffer.concat(h.frame))).equals(first), 'a held frame was overwritten by a later stream');
  for (const h of held) assert.ok(Buffer.concat(h.frame).equals(h.copy));
});
