// appendSegments (server/archive/segment-append.ts) with the store replaced by a list: when segments are cut (by
// size, by age, at the request's end however it ends), that they hold whole verified frames byte for byte, and that
// nothing of a frame that failed or a frame in flight is stored; how state.json is read. No S3 here:
// segment-uploads.test.ts has the bucket.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { CHAIN_ZERO } from '../../core/wire/index.ts';
import { appendSegments, type SegmentJob } from '../../server/archive/segment-append.ts';
import { parseState, progressOf, STATE_VERSION, uploadEnd, type SegmentRecord, type UploadState } from '../../server/archive/upload-state.ts';
import { transferState, transferView, type TransferRecord } from '../../server/archive/archive-transfer.ts';
import type { SpoolProgress } from '../../server/spool/progress.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';

const CHUNK = 64 * 1024;
const START: SpoolProgress = { wireOffset: 0, framesVerified: 0, rawBytes: 0, chain: CHAIN_ZERO, complete: false };

async function framed(frames: number): Promise<{ wire: Buffer; ends: number[] }> {
  const { wire, frames: info } = await encode(mixedBytes(frames * CHUNK, CHUNK, 5), { chunkSize: CHUNK, level: 1 });
  return { wire, ends: info.map((f) => f.wireOffset + f.wireLength) };
}

/** Runs a request of `chunks` (then `fail`, if given) and returns what was stored and how it ended. */
async function run(chunks: Buffer[], job: Partial<SegmentJob> = {}, fail?: Error) {
  const stored: { segment: SegmentRecord; body: Buffer }[] = [];
  const body = Readable.from((async function* () {
    yield* chunks;
    if (fail) throw fail;
  })());
  const outcome = await appendSegments({
    start: START, chunkSize: CHUNK, body, sink: { start: () => undefined, complete: () => undefined },
    limits: { segmentBytes: 1 << 30, segmentMs: 1 << 30 }, now: () => 0, arrived: () => undefined,
    store: async (segment, bytes) => void stored.push({ segment, body: Buffer.from(bytes) }),
    ...job,
  }).then((p) => p, (err: unknown) => err);
  return { stored, outcome };
}

test('a whole stream in one request is one segment at its end; by size, a segment every time one reaches the limit', async () => {
  const { wire, ends } = await framed(5);
  const one = await run([wire]);
  assert.equal(one.stored.length, 1);
  assert.deepEqual(one.stored[0]!.body, wire);
  assert.deepEqual((one.outcome as SpoolProgress).wireOffset, wire.length);
  assert.equal(one.stored[0]!.segment.end, true);

  const bySize = await run([wire], { limits: { segmentBytes: ends[1]!, segmentMs: 1 << 30 } });
  assert.ok(bySize.stored.length >= 3);
  assert.deepEqual(Buffer.concat(bySize.stored.map((s) => s.body)), wire);
  let next = 0;
  for (const { segment, body } of bySize.stored) {
    assert.equal(segment.first, next);
    assert.equal(segment.wireEnd - segment.wireStart, body.length);
    assert.ok(segment.end || ends.includes(segment.wireEnd));
    next = segment.last + 1;
  }
});

test('by age: a segment once its first frame is segmentMs old, checked as frames arrive', async () => {
  const { wire, ends } = await framed(4);
  let clock = 0;
  const chunks = [0, 1, 2, 3].map((i) => wire.subarray(i === 0 ? 0 : ends[i - 1]!, i === 3 ? wire.length : ends[i]!));
  const paced = Readable.from((async function* () {
    for (const c of chunks) {
      yield c;
      clock += 1000;
    }
  })());
  const { stored } = await run([], { body: paced, now: () => clock, limits: { segmentBytes: 1 << 30, segmentMs: 1500 } });
  // Frames 0 (t=0) and 1 (t=1000) wait; frame 2 arrives at t=2000, 2 s after the segment began: 0-2 are stored.
  assert.deepEqual(stored.map((s) => [s.segment.first, s.segment.last]), [[0, 2], [3, 4]]);
  assert.deepEqual(Buffer.concat(stored.map((s) => s.body)), wire);
});

test('a cut request stores its whole frames and nothing of the one in flight; a failed frame nothing of itself', async () => {
  const { wire, ends } = await framed(4);
  const cut = await run([wire.subarray(0, ends[1]! + 10)], {}, Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  assert.equal((cut.outcome as NodeJS.ErrnoException).code, 'ECONNRESET');
  assert.deepEqual(Buffer.concat(cut.stored.map((s) => s.body)), wire.subarray(0, ends[1]!));

  const bad = Buffer.from(wire.subarray(0, ends[2]!));
  bad[ends[2]! - 1]! ^= 0xff;
  // Frame 2 fails in a request of its own after frames 0-1 came in another chunk.
  const failed = await run([bad.subarray(0, ends[1]!), bad.subarray(ends[1]!)]);
  assert.match((failed.outcome as { code: string }).code, /^frame_/);
  assert.deepEqual(Buffer.concat(failed.stored.map((s) => s.body)), wire.subarray(0, ends[1]!));
});

test('a state.json whose segments do not tile the stream, or that names another upload, is refused with the key named', async () => {
  const { wire } = await framed(2);
  const { stored } = await run([wire]);
  const id = 'a'.repeat(32);
  const state: UploadState = {
    version: STATE_VERSION, id, metadata: { a: 'b', c: null }, creationDate: 'x', size: null, generation: 1, touchedAt: 'y',
    segments: stored.map((s) => s.segment), tombstone: null,
  };
  const back = parseState(id, Buffer.from(JSON.stringify(state)));
  assert.equal(progressOf(back).wireOffset, wire.length);
  assert.equal(progressOf(back).complete, true);
  const bad = (s: unknown) => assert.throws(() => parseState(id, Buffer.from(JSON.stringify(s))), { code: 'archive_object_corrupt' });
  bad({ ...state, id: 'b'.repeat(32) });
  bad({ ...state, segments: [{ ...state.segments[0]!, wireStart: 1 }] });
  bad({ ...state, segments: [{ ...state.segments[0]!, name: '../x' }] });
  bad({ ...state, version: 2 });
  assert.throws(() => parseState(id, Buffer.from('{')), { code: 'archive_object_corrupt' });
});

test('a removed upload may carry the refusal that ended it: its transfer is failed with it (aborted without); an error beside another tombstone, or not a code, message and time, is refused', () => {
  const id = 'a'.repeat(32);
  const removed: UploadState = {
    version: STATE_VERSION, id, metadata: {}, creationDate: 'x', size: null, generation: 1, touchedAt: 'y', segments: [], tombstone: 'removed',
  };
  const error = { code: 'parent_changed', message: 'the client\'s s1 ... was changed after it was sent', at: '2026-12-06T00:00:00.000Z' };
  const refused = parseState(id, Buffer.from(JSON.stringify({ ...removed, error })));
  assert.deepEqual([transferState(refused, undefined), transferState(removed, undefined)], ['failed', 'aborted']);
  const record: TransferRecord = {
    id, client: 'c', volume: 'v', snapshot: 's2', uuid: 'u', parentUuid: 'p', createdAt: 'x', rawEstimate: null, chunkSize: CHUNK, sendStream: 'v1',
    snapshotCreatedAt: null, snapshotTakenAt: null,
  };
  assert.deepEqual(transferView(record, refused, undefined, 0).error, error, 'as core/plan.ts changedParents reads a failed transfer');
  const bad = (s: unknown) => assert.throws(() => parseState(id, Buffer.from(JSON.stringify(s))), { code: 'archive_object_corrupt' });
  bad({ ...removed, tombstone: 'expired', error });
  bad({ ...removed, tombstone: null, error });
  bad({ ...removed, error: { code: 'parent_changed' } });
});

test('uploadEnd is the one reading of a tombstone, which the listing and the counts share: expired is failed upload_expired, removed with an error failed with it, removed without aborted, none not over', () => {
  const id = 'a'.repeat(32);
  const open: UploadState = {
    version: STATE_VERSION, id, metadata: {}, creationDate: 'x', size: null, generation: 1, touchedAt: '2026-12-06T01:00:00.000Z', segments: [], tombstone: null,
  };
  const error = { code: 'frame_corrupt', message: 'frame 0 does not verify', at: '2026-12-06T00:00:00.000Z' };
  assert.equal(uploadEnd(open), null);
  assert.deepEqual(uploadEnd({ ...open, tombstone: 'removed' }), { state: 'aborted', error: null });
  assert.deepEqual(uploadEnd({ ...open, tombstone: 'removed', error }), { state: 'failed', error });
  assert.deepEqual(uploadEnd({ ...open, tombstone: 'expired' }), {
    state: 'failed', error: { code: 'upload_expired', message: 'nothing was sent for too long; the upload was deleted', at: open.touchedAt },
  });
});
