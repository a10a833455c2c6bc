/**
 * The part of a frame still arriving is on disk in the spool while its request goes on (server/spool/tail-writes.ts):
 * a server killed with SIGKILL mid-request keeps it (the page cache outlives the process), repair keeps it as a cut's
 * tail, and the client sends only the rest. Kept in memory until the request ended, it died with the process, and the
 * client sent that frame again from its start (test/e2e/silent-line-kills.test.ts: 59 kB of a 64 KiB frame).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { SnapferryError } from '../../core/errors.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { TAIL_WRITE_MS } from '../../server/spool/tail-writes.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';
import { appendBody, spoolWith } from './spool-fixture.ts';

const CHUNK = 64 * 1024;
const ID = 'f'.repeat(32);

const spoolIn = (t: TestContext) => spoolWith(t, ID);

const sink: FrameSink = { start: () => undefined, stored: () => false, complete: () => undefined, endRefused: () => undefined };

/** Waits until the spool file is `size` bytes on disk, for at most ten times the tail's delay. */
async function untilOnDisk(file: string, size: number): Promise<void> {
  const end = Date.now() + 10 * TAIL_WRITE_MS;
  let now = (await fs.stat(file)).size;
  while (now !== size && Date.now() < end) {
    await sleep(10);
    now = (await fs.stat(file)).size;
  }
  assert.equal(now, size, 'the spool holds what arrived of the frame while its request goes on');
}

function append(spool: Spool, offset: number, bytes: Buffer): Promise<number> {
  return appendBody(spool, ID, offset, bytes, CHUNK, sink);
}

test('what arrived of a frame is written to the spool while its request waits for the rest: a server that dies then keeps it, and the next request sends only the rest', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(4 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  // Frame 1 is random bytes, a raw frame of 64 KiB.
  const into1 = frames[1]!.wireOffset + Math.floor(frames[1]!.wireLength / 2);
  // Frame 0 and half of frame 1 have arrived, then the line falls silent (the request stays open).
  const body = new PassThrough();
  const appending = spool.append(ID, body, 0, CHUNK, sink);
  appending.catch(() => undefined);
  body.write(wire.subarray(0, into1));
  await untilOnDisk(layout.spoolFile(ID), into1);
  assert.deepEqual(await fs.readFile(layout.spoolFile(ID)), wire.subarray(0, into1));

  // The server is killed now (its append never ends) and starts again: repair keeps the part, the HEAD offers it.
  const restarted = new Spool(layout);
  const open = await restarted.open(ID);
  assert.deepEqual([open.progress.framesVerified, open.progress.wireOffset, open.size], [1, frames[1]!.wireOffset, into1]);
  assert.equal(await append(restarted, into1, wire.subarray(into1)), wire.length);
  assert.deepEqual(await fs.readFile(layout.spoolFile(ID)), wire);
  assert.equal((await restarted.progress(ID)).complete, true);
  body.destroy(new Error('the killed server\'s request'));
  await assert.rejects(appending);
});

test('a frame whose first part was written while it arrived and that then fails leaves none of itself; one that verifies is the bytes sent', async (t) => {
  const { layout, spool } = await spoolIn(t);
  const { wire, frames } = await encode(mixedBytes(4 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const into1 = frames[1]!.wireOffset + 100;
  const body = new PassThrough();
  const appending = spool.append(ID, body, 0, CHUNK, sink);
  body.write(wire.subarray(0, into1));
  await untilOnDisk(layout.spoolFile(ID), into1);
  // The rest of frame 1, damaged.
  const damaged = Buffer.from(wire.subarray(into1, frames[2]!.wireOffset));
  damaged[damaged.length - 1]! ^= 0xff;
  body.end(damaged);
  await assert.rejects(appending, (err: unknown) => err instanceof SnapferryError && err.code.startsWith('frame_'));
  assert.equal((await fs.stat(layout.spoolFile(ID))).size, frames[1]!.wireOffset, 'the failed frame left none of its bytes');

  // Sent again whole, in pieces a tail's delay apart, with the rest of the stream: the spool is the stream.
  const again = new PassThrough();
  const whole = spool.append(ID, again, frames[1]!.wireOffset, CHUNK, sink);
  for (const [from, to] of [[frames[1]!.wireOffset, into1], [into1, frames[2]!.wireOffset + 7], [frames[2]!.wireOffset + 7, wire.length]] as const) {
    again.write(wire.subarray(from, to));
    await sleep(2 * TAIL_WRITE_MS);
  }
  again.end();
  assert.equal(await whole, wire.length);
  assert.deepEqual(await fs.readFile(layout.spoolFile(ID)), wire);
});
