/**
 * The upload store's quota wrapper (server/upload-store/quota.ts) on real files, through the tus adapter: a write refused at once (wrong offset) must not leave an error behind that
 * nobody hears, which crashes the server when @tus/server then destroys the request stream with that error; and a
 * request cut before the write reads it must end the write, which holds the upload's lock.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import type { WriteMeter } from '../../server/upload-store/index.ts';
import { INDEX_RECORD_SIZE } from '../../server/spool/frame-index.ts';
import { quotaExceeded } from '../../server/upload-limits.ts';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { frameStream } from '../fixtures/send-streams.ts';
import { NO_LIMIT, uploadStoreIn } from './upload-store-fixture.ts';

async function storeIn(t: TestContext, openWrite: () => Promise<WriteMeter> = () => Promise.resolve(NO_LIMIT)) {
  const { store, layout, create } = await uploadStoreIn(t, { quota: { openWrite } });
  const id = 'a'.repeat(32);
  await create(id);
  return { store, id, layout };
}

test('a write refused for its offset, whose request stream is then destroyed with that error, crashes nothing', async (t) => {
  const { store, id } = await storeIn(t);

  const uncaught: unknown[] = [];
  const listener = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', listener);
  t.after(() => process.off('uncaughtException', listener));

  const request = new PassThrough();
  const refused = await store.write(request, id, 4096).then(() => null, (err: unknown) => err);
  assert.equal((refused as { code?: string } | null)?.code, 'offset_mismatch');
  // What @tus/server's pipeline does next: destroy the request stream with the store's error.
  request.destroy(refused as Error);
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(uncaught, [], 'no error event went unheard');
});

test('a request cut while the write opens its quota meter ends the write, and the next request of the upload gets through', async (t) => {
  let limitAsked!: () => void;
  const asked = new Promise<void>((resolve) => (limitAsked = resolve));
  let giveLimit!: (meter: WriteMeter) => void;
  // The real meter measures the client's spools on disk: a cut can land while it does.
  const { store, id } = await storeIn(t, () => {
    limitAsked();
    return new Promise((resolve) => (giveLimit = resolve));
  });

  const request = new PassThrough();
  request.on('error', () => undefined);
  const writing = store.write(request, id, 0).then(() => null, (err: unknown) => err);
  await asked;
  // What @tus/server's pipeline does when the client's socket is reset: destroy the request stream with the error.
  request.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  await new Promise((r) => setImmediate(r));
  giveLimit(NO_LIMIT);

  const within = async <T>(what: string, p: Promise<T>): Promise<T> => {
    let timer: NodeJS.Timeout | undefined;
    try {
      return await Promise.race([p, new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what} still waits after 5 s`)), 5000)))]);
    } finally {
      clearTimeout(timer);
    }
  };
  const failed = await within('the write', writing);
  assert.equal((failed as NodeJS.ErrnoException | null)?.code, 'ECONNRESET');
  // The HEAD that follows a cut: it needs the upload's lock, which the write must have let go.
  assert.equal((await within('the next HEAD', store.getUpload(id))).offset, 0);
});

test("the quota's meter counts what the frame index grows by too: tiny frames cost the index more than their bytes", async (t) => {
  const admitted: number[] = [];
  const { store, id, layout } = await storeIn(t, () =>
    Promise.resolve({ admit: (bytes: number) => (admitted.push(bytes), null), close: () => undefined }),
  );
  // Zeros compress to a few dozen bytes a frame: the index's 64-byte records are most of what the upload holds.
  const framed = await frameStream(Buffer.alloc(40 * 64 * 1024), 64 * 1024);
  const request = new PassThrough();
  const writing = store.write(request, id, 0);
  const indexed = () => fs.stat(layout.frameIndexFile(id)).then((st) => st.size, () => 0);
  const last = framed.length - 100;
  for (let at = 0; at < last; at += 512) request.write(framed.subarray(at, Math.min(at + 512, last)));
  // Until the store has indexed what it was sent (all frames but those in the last piece).
  while ((await indexed()) < 38 * INDEX_RECORD_SIZE) await new Promise((r) => setTimeout(r, 5));
  const before = await indexed();
  request.end(framed.subarray(last));
  assert.equal(await writing, framed.length);
  assert.ok(admitted.at(-1)! >= framed.length + before, `last admitted ${admitted.at(-1)}, stream ${framed.length}, index ${before}`);
});

test('a write the quota refuses keeps the bytes before its line, the part of the frame in flight included, as a cut keeps them', async (t) => {
  const id = 'a'.repeat(32);
  const frame = FRAME_HEADER_SIZE + 64 * 1024;
  const line = 2 * frame + 1000;
  const refusal = (bytes: number) => quotaExceeded({ client: 'alice', size: bytes, quota: line, heldByOthers: 0, sizeIsExact: false, keptAs: id });
  const { store } = await storeIn(t, () => Promise.resolve({ admit: (bytes: number) => (bytes > line ? refusal(bytes) : null), close: () => undefined }));
  // Random, so each frame is its header and a whole chunk: the line falls 1000 bytes into frame 2.
  const framed = await frameStream(crypto.randomBytes(4 * 64 * 1024), 64 * 1024);
  const request = new PassThrough();
  const writing = store.write(request, id, 0);
  request.end(framed);
  await assert.rejects(writing, { code: 'quota_exceeded' });
  // Dropped with the refusal, the next push sent those 1000 bytes again: up to a frame each time it was refused.
  assert.equal((await store.getUpload(id)).offset, line);
});

test("each index record is admitted before it is written: a write's last frames cannot take the index past the quota", async (t) => {
  const id = 'a'.repeat(32);
  // Zeros compress to a few dozen bytes a frame: one network read completes dozens of frames, each adding a record.
  const framed = await frameStream(Buffer.alloc(40 * 64 * 1024), 64 * 1024);
  let line = framed.length + 10 * INDEX_RECORD_SIZE;
  const refusal = (bytes: number) => quotaExceeded({ client: 'alice', size: bytes, quota: line, heldByOthers: 0, sizeIsExact: false, keptAs: id });
  const { store, layout } = await storeIn(t, () => Promise.resolve({ admit: (bytes: number) => (bytes > line ? refusal(bytes) : null), close: () => undefined }));
  const onDisk = async () => (await fs.stat(layout.spoolFile(id))).size + (await fs.stat(layout.frameIndexFile(id))).size;
  const request = new PassThrough();
  const writing = store.write(request, id, 0);
  // One piece: the meter admits the whole stream before any of its frames is cut, and the body ends with it.
  request.end(framed);
  await assert.rejects(writing, { code: 'quota_exceeded' });
  assert.ok(await onDisk() <= line, `the upload holds ${await onDisk()} bytes on disk, over the quota's line at ${line}`);
  // The frames past the line stay as the spool's tail, not lost: once the quota allows, they are indexed without
  // a byte sent again, and the stream completes.
  assert.equal((await store.getUpload(id)).offset, framed.length);
  line = Infinity;
  const next = new PassThrough();
  const resumed = store.write(next, id, framed.length);
  next.end();
  assert.equal(await resumed, framed.length);
  assert.equal(await onDisk(), framed.length + 41 * INDEX_RECORD_SIZE);
});
