/**
 * The spool on a disk that fills up in the middle of a request: whatever the spool holds past its verified frames
 * must still be the stream's own next bytes, since the spool's size is the offset the client is told and builds on.
 * A frame whose write fails must not have the bytes after it written in its place (they were, once a request's
 * chunk held several frames: the client was told an offset past bytes the spool did not have, and a later request
 * then asked it to rewind before what it had been told was acknowledged).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { readRecords } from '../../server/spool/frame-index.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';

const CHUNK = 64 * 1024;
const ID = 'f'.repeat(32);

/** A small tmpfs with `free` bytes left (in whole pages), removed when the test ends. */
async function nearlyFullDisk(t: TestContext, free: number): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-full-${process.pid}-`));
  await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'snapferry-test', dir]);
  t.after(async () => {
    await execa('umount', [dir]).catch(() => undefined);
    await fs.rm(dir, { recursive: true, force: true });
  });
  await fs.writeFile(path.join(dir, 'filler'), Buffer.alloc(1024 * 1024 - free));
  return dir;
}

const sink: FrameSink = { start: () => undefined, stored: () => false, complete: () => undefined, endRefused: () => undefined };

test('a full disk mid-request leaves the spool a prefix of the stream: no later bytes where a frame failed to go', rootOnly, async (t) => {
  // Room for the index and frame 0, not for frame 1: its write comes up short.
  const dir = await nearlyFullDisk(t, 112 * 1024);
  const layout = new ServerLayout(dir);
  const spool = new Spool(layout);
  await spool.create(ID);
  const { wire, frames } = await encode(mixedBytes(4 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 0 });
  // One request chunk that completes frames 0, 1 and 2 and ends inside frame 3.
  const cutAt = frames[3]!.wireOffset + 1000;
  const body = new PassThrough();
  const appending = spool.append(ID, body, 0, CHUNK, sink);
  body.end(wire.subarray(0, cutAt));
  await assert.rejects(appending, (err: NodeJS.ErrnoException) => err.code === 'ENOSPC');

  const held = await fs.readFile(layout.spoolFile(ID));
  const records = await readRecords(layout.frameIndexFile(ID), 0, 10);
  assert.equal(records.length, 1, 'frame 0 verified and indexed, frame 1 never went in');
  assert.ok(held.length >= records[0]!.wireEnd, `the spool holds frame 0 (${held.length} bytes)`);
  assert.ok(held.length <= cutAt);
  assert.ok(held.equals(wire.subarray(0, held.length)), `the spool's ${held.length} bytes are not the stream's first ${held.length}`);
});
