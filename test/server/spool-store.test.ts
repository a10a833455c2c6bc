/**
 * The frame-verifying store on real files, with requests that overlap as they do after a cut: the cut PATCH's
 * write() may still be storing frames when the client's next HEAD or PATCH reaches the store. Whatever the overlap,
 * the spool must hold exactly the verified frames its index vouches for, and the offset must never go back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { Upload } from '@tus/utils';
import { FrameVerifyingStore } from '../../server/spool-store.ts';
import { ServerLayout } from '../../server/layout.ts';
import { encodeIndexRecord, readRecords } from '../../server/frame-index.ts';
import { encode as encodeFrames, mixedBytes, slices, KiB } from '../wire/frame-helpers.ts';

/** The framed stream and where each frame ends on the wire. */
async function encode(raw: Buffer, opts: Parameters<typeof encodeFrames>[1]) {
  const { wire, frames } = await encodeFrames(raw, opts);
  return { wire, frames: frames.map((f) => ({ wireEnd: f.wireOffset + f.wireLength })) };
}

const CHUNK = 64 * KiB;

async function storeIn(t: { after(fn: () => Promise<void>): void }) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-spool-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  await fs.mkdir(layout.spool, { recursive: true });
  const completed: number[] = [];
  const store = new FrameVerifyingStore(layout, {
    chunkSizeOf: () => CHUNK,
    checkStreamStart: () => undefined,
    onFrameStored: () => undefined,
    onStreamComplete: (_upload, progress) => completed.push(progress.wireOffset),
    onEndFrameRefused: () => undefined,
    closedError: () => null,
  });
  const id = 'c'.repeat(32);
  await store.create(new Upload({ id, offset: 0, size: undefined, creation_date: new Date().toISOString() }));
  return { layout, store, id, completed };
}

test('a HEAD (getUpload) while a write is storing frames waits for it: the offset never goes back, the spool is what was sent', async (t) => {
  const { layout, store, id, completed } = await storeIn(t);
  const { wire, frames } = await encode(mixedBytes(40 * CHUNK, 3 * CHUNK), { chunkSize: CHUNK, level: 1 });
  const boundaries = new Set([0, ...frames.map((f) => f.wireEnd)]);

  const request = new PassThrough();
  const writing = store.write(request, id, 0);
  const seen: number[] = [];
  let done = false;
  const heads = (async () => {
    while (!done) {
      seen.push((await store.getUpload(id)).offset);
      await tick();
    }
  })();
  for (const piece of slices(wire, [7 * KiB, 20 * KiB, 3 * KiB])) {
    request.write(piece);
    await tick();
  }
  request.end();
  assert.equal(await writing, wire.length);
  done = true;
  await heads;

  assert.ok(seen.length > 0);
  for (const [i, offset] of seen.entries()) {
    assert.ok(boundaries.has(offset), `HEAD ${i} saw ${offset}, not a frame boundary`);
    if (i > 0) assert.ok(offset >= seen[i - 1]!, `HEAD ${i} saw ${offset} after ${seen[i - 1]}`);
  }
  t.diagnostic(`${seen.length} HEADs during the write saw ${[...new Set(seen)].length} offsets`);
  assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire, 'the spool holds exactly the bytes sent');
  assert.equal((await store.getUpload(id)).offset, wire.length);
  assert.equal((await store.progress(id)).complete, true);
  assert.deepEqual(completed, [wire.length]);
});

test('a write whose request stream fails mid-frame keeps every whole frame, and the next write resumes there', async (t) => {
  const { layout, store, id } = await storeIn(t);
  const { wire, frames } = await encode(mixedBytes(12 * CHUNK, 2 * CHUNK), { chunkSize: CHUNK, level: 1 });
  const cutAt = frames[5]!.wireEnd - 10;

  const first = new PassThrough();
  first.on('error', () => undefined);
  const writing = store.write(first, id, 0);
  // What a cut looks like: the bytes up to the cut, then the request stream fails; a HEAD comes at once.
  first.write(wire.subarray(0, cutAt));
  while ((await store.progress(id)).framesVerified < 5) await tick();
  first.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  const head = store.getUpload(id);
  await writing.catch(() => undefined);
  const offset = (await head).offset;
  assert.equal(offset, frames[4]!.wireEnd, 'the last whole frame before the cut');

  const second = new PassThrough();
  const resumed = store.write(second, id, offset);
  second.end(wire.subarray(offset));
  assert.equal(await resumed, wire.length);
  assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire);
});

/**
 * A store whose upload's index vouches for six frames while its spool lost the end of them (a power cut that kept the
 * index's last appends but not the spool's last bytes, or a disk that lied about a sync): frame 4 is cut in the middle.
 */
async function storeWithLostTail(t: { after(fn: () => Promise<void>): void }) {
  const { layout, store, id } = await storeIn(t);
  const { frames, wire } = await encode(mixedBytes(8 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const request = new PassThrough();
  const writing = store.write(request, id, 0);
  request.end(wire.subarray(0, frames[5]!.wireEnd));
  await writing;
  await fs.truncate(layout.spoolFile(id), frames[3]!.wireEnd + 10);
  return { layout, store, id, frames };
}

test('repair: a spool shorter than its index cuts the index back to the last frame the spool holds whole', async (t) => {
  const { layout, store, id, frames } = await storeWithLostTail(t);

  const progress = await store.repair(id);
  assert.equal(progress.wireOffset, frames[3]!.wireEnd);
  assert.equal(progress.framesVerified, 4);
  assert.equal((await fs.stat(layout.spoolFile(id))).size, frames[3]!.wireEnd);
  assert.equal((await readRecords(layout.frameIndexFile(id), 0, 100)).length, 4);
  assert.equal((await store.getUpload(id)).offset, frames[3]!.wireEnd);
  // A torn record appended after a crash is dropped too.
  await fs.appendFile(layout.frameIndexFile(id), encodeIndexRecord({ index: 4, wireEnd: 1, rawEnd: 1, kind: 'data', chain: Buffer.alloc(32) }).subarray(0, 20));
  assert.equal((await store.repair(id)).framesVerified, 4);
});

test('progress (what GET /v1/transfers resumes from) never vouches for more than a HEAD will: a spool that lost bytes its index keeps', async (t) => {
  const { layout, store, id, frames } = await storeWithLostTail(t);

  // Nothing has repaired the upload yet (a server just restarted): a client that resumes from this offset must find
  // the same one in the HEAD that follows, or it stops with "the server asked for offset ..., before ... which it had
  // already acknowledged".
  const listed = await store.progress(id);
  assert.equal(listed.wireOffset, frames[3]!.wireEnd);
  assert.equal(listed.framesVerified, 4);
  assert.equal((await store.getUpload(id)).offset, listed.wireOffset);
  assert.deepEqual(await store.progress(id), listed, 'the repair the HEAD made changed nothing progress had not said');
  // A spool that is gone holds nothing.
  await fs.rm(layout.spoolFile(id));
  assert.equal((await store.progress(id)).wireOffset, 0);
});
