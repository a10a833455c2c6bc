/**
 * The spool under the upload store and its tus adapter (server/spool/, server/upload-store/), on real files, with requests that overlap as they do after a cut: the cut PATCH's
 * write() may still be storing frames when the client's next HEAD or PATCH reaches the store. Whatever the overlap,
 * the spool must hold exactly the verified frames its index vouches for, and the offset must never go back.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import { encodeIndexRecord, readRecords } from '../../server/spool/frame-index.ts';
import { encode as encodeFrames, mixedBytes, slices, KiB } from '../wire/frame-helpers.ts';
import { CHUNK, cutRequest, uploadStoreIn } from './upload-store-fixture.ts';

/** The framed stream and where each frame ends on the wire. */
async function encode(raw: Buffer, opts: Parameters<typeof encodeFrames>[1]) {
  const { wire, frames } = await encodeFrames(raw, opts);
  return { wire, frames: frames.map((f) => ({ wireEnd: f.wireOffset + f.wireLength })) };
}

async function storeIn(t: { after(fn: () => Promise<void>): void }) {
  const { layout, store, spool, completed, create } = await uploadStoreIn(t);
  const id = 'c'.repeat(32);
  await create(id);
  return { layout, store, spool, id, completed };
}

test('a HEAD (getUpload) while a write is storing frames waits for it: the offset never goes back, the spool is what was sent', async (t) => {
  const { layout, store, spool, id, completed } = await storeIn(t);
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
  assert.equal((await spool.progress(id)).complete, true);
  assert.deepEqual(completed, [wire.length]);
});

test('a write whose request stream fails mid-frame keeps every whole frame and what arrived of the next, and the next write resumes there', async (t) => {
  const { layout, store, spool, id } = await storeIn(t);
  const { wire, frames } = await encode(mixedBytes(12 * CHUNK, 2 * CHUNK), { chunkSize: CHUNK, level: 1 });
  const cutAt = frames[5]!.wireEnd - 10;

  const first = new PassThrough();
  first.on('error', () => undefined);
  const writing = store.write(first, id, 0);
  // What a cut looks like: the bytes up to the cut, then the request stream fails; a HEAD comes at once.
  first.write(wire.subarray(0, cutAt));
  while ((await spool.progress(id)).framesVerified < 5) await tick();
  first.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  const head = store.getUpload(id);
  await writing.catch(() => undefined);
  const offset = (await head).offset;
  assert.ok(offset > frames[4]!.wireEnd && offset <= cutAt, `past the last whole frame (${frames[4]!.wireEnd}), at most the cut (${cutAt}): ${offset}`);
  assert.equal((await spool.progress(id)).wireOffset, frames[4]!.wireEnd, 'verified: the last whole frame before the cut');
  assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire.subarray(0, offset), 'the spool holds what arrived');

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
  const { layout, store, spool, id } = await storeIn(t);
  const { frames, wire } = await encode(mixedBytes(8 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 1 });
  const request = new PassThrough();
  const writing = store.write(request, id, 0);
  request.end(wire.subarray(0, frames[5]!.wireEnd));
  await writing;
  await fs.truncate(layout.spoolFile(id), frames[3]!.wireEnd + 10);
  return { layout, store, spool, id, frames };
}

test('repair: a spool shorter than its index cuts the index back to the last frame the spool holds whole', async (t) => {
  const { layout, store, spool, id, frames } = await storeWithLostTail(t);

  const progress = await spool.repair(id);
  assert.equal(progress.wireOffset, frames[3]!.wireEnd);
  assert.equal(progress.framesVerified, 4);
  // What is left of frame 4 stays, as the part of a frame a cut left: the next write verifies it with the rest.
  assert.equal((await fs.stat(layout.spoolFile(id))).size, frames[3]!.wireEnd + 10);
  assert.equal((await readRecords(layout.frameIndexFile(id), 0, 100)).length, 4);
  assert.equal((await store.getUpload(id)).offset, frames[3]!.wireEnd + 10);
  // A torn record appended after a crash is dropped too.
  await fs.appendFile(layout.frameIndexFile(id), encodeIndexRecord({ index: 4, wireEnd: 1, rawEnd: 1, kind: 'data', chain: Buffer.alloc(32) }).subarray(0, 20));
  assert.equal((await spool.repair(id)).framesVerified, 4);
});

test('progress (what GET /v1/transfers resumes from) never vouches for more than a HEAD will: a spool that lost bytes its index keeps', async (t) => {
  const { layout, store, spool, id, frames } = await storeWithLostTail(t);

  // Nothing has repaired the upload yet (a server just restarted): a client that resumes from this offset must find
  // the same one in the HEAD that follows, or it stops with "the server asked for offset ..., before ... which it had
  // already acknowledged".
  const listed = await spool.progress(id);
  assert.equal(listed.wireOffset, frames[3]!.wireEnd);
  assert.equal(listed.framesVerified, 4);
  // The HEAD may say more (the part of frame 4 the spool holds), never less: the client keeps that frame whole.
  assert.equal((await store.getUpload(id)).offset, listed.wireOffset + 10);
  assert.deepEqual(await spool.progress(id), listed, 'the repair the HEAD made changed nothing progress had not said');
  // A spool that is gone holds nothing.
  await fs.rm(layout.spoolFile(id));
  assert.equal((await spool.progress(id)).wireOffset, 0);
});

test('a line that cuts every 40% of a frame still gets the upload through: each cut keeps what arrived', async (t) => {
  const { layout, store, spool, id, completed } = await storeIn(t);
  const { wire } = await encode(mixedBytes(6 * CHUNK, CHUNK), { chunkSize: CHUNK, level: 0 });
  const step = Math.floor(0.4 * CHUNK);
  let offset = 0;
  let cuts = 0;
  while (offset + step < wire.length) {
    const next = await cutRequest(store, spool, id, offset, wire.subarray(offset, offset + step));
    assert.equal(next, offset + step, `cut ${cuts}: every byte that arrived is kept`);
    offset = next;
    cuts++;
  }
  const last = new PassThrough();
  const finishing = store.write(last, id, offset);
  last.end(wire.subarray(offset));
  assert.equal(await finishing, wire.length);
  assert.ok(cuts >= 14, `${cuts} cuts`);
  assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire);
  assert.deepEqual(completed, [wire.length]);
});

test('the rest of a frame from another encoding fails as a retryable partial_frame_mismatch: the kept part goes, the whole frame goes through', async (t) => {
  const { layout, store, spool, id, completed } = await storeIn(t);
  const raw = mixedBytes(4 * CHUNK, 2 * CHUNK);
  const a = await encode(raw, { chunkSize: CHUNK, level: 1 });
  const b = await encode(raw, { chunkSize: CHUNK, level: 19 });
  assert.notDeepEqual(a.wire.subarray(a.frames[0]!.wireEnd, a.frames[1]!.wireEnd), b.wire.subarray(b.frames[0]!.wireEnd, b.frames[1]!.wireEnd));
  // Frame 0 and half of frame 1 at level 1, then the cut.
  const half = a.frames[0]!.wireEnd + Math.floor((a.frames[1]!.wireEnd - a.frames[0]!.wireEnd) / 2);
  const offset = await cutRequest(store, spool, id, 0, a.wire.subarray(0, half));
  assert.equal(offset, half);
  // The client framed the rest again at level 19 and sends frame 1 from where the server's offset says.
  const spliced = new PassThrough();
  const writing = store.write(spliced, id, offset);
  spliced.end(b.wire.subarray(offset));
  const err = await writing.then(() => null, (e: unknown) => e as { code?: string; status_code?: number; retryable?: boolean });
  assert.equal(err?.code, 'partial_frame_mismatch');
  assert.equal(err?.status_code, 409);
  assert.equal(err?.retryable, true);
  assert.equal((await store.getUpload(id)).offset, a.frames[0]!.wireEnd, 'back at the last verified frame');
  // The whole frame again, and the rest, as the client sends them after its HEAD.
  const again = new PassThrough();
  const resumed = store.write(again, id, a.frames[0]!.wireEnd);
  again.end(b.wire.subarray(b.frames[0]!.wireEnd));
  const expected = Buffer.concat([a.wire.subarray(0, a.frames[0]!.wireEnd), b.wire.subarray(b.frames[0]!.wireEnd)]);
  assert.equal(await resumed, expected.length);
  assert.deepEqual(await fs.readFile(layout.spoolFile(id)), expected);
  assert.deepEqual(completed, [expected.length]);
});
