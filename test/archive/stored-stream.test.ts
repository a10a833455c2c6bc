/**
 * A stored stream damaged in the bucket, read back for a restore (server/archive/stored-stream.ts): the answer names
 * the segment object and says the archive's copy is damaged (archive_object_corrupt), whether the damage is in the
 * segment read before the answer starts or in one read while it goes out. A bare FrameError went out as 460
 * frame_corrupt, a code of an upload's frames, or broke the answer off with a raw stack in the server's stderr.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { FrameParser, type VerifiedFrame } from '../../core/wire/index.ts';
import { SnapferryError } from '../../core/errors.ts';
import { openStoredStream } from '../../server/archive/stored-stream.ts';
import type { Manifest, ManifestSegment } from '../../server/archive/manifest.ts';
import type { ObjectStore } from '../../server/archive/object-store.ts';
import { frameStream } from '../fixtures/send-streams.ts';

const CHUNK = 65536;

/** The stream in two segments, frames 0-1 and the rest (the end frame with them), in a bucket of plain memory. */
async function stored(): Promise<{ manifest: Manifest; objects: Map<string, Buffer>; store: ObjectStore }> {
  const wire = await frameStream(crypto.randomBytes(4 * CHUNK + 1000), CHUNK, 0);
  const frames: VerifiedFrame[] = new FrameParser({ chunkSize: CHUNK }).push(wire);
  const cut = frames[1]!.wireEnd;
  const segment = (key: string, from: VerifiedFrame[], wireStart: number): ManifestSegment => {
    const lastData = from.filter((f) => f.kind === 'data').at(-1)!;
    return {
      key, first: from[0]!.index, last: lastData.index, wireStart, wireEnd: from.at(-1)!.wireEnd,
      rawEnd: lastData.rawOffset + lastData.rawLength, chain: lastData.chain.toString('hex'), end: from.at(-1)!.kind === 'end',
    };
  };
  const segments = [segment('seg-0', frames.slice(0, 2), 0), segment('seg-1', frames.slice(2), cut)];
  const objects = new Map([['seg-0', wire.subarray(0, cut)], ['seg-1', Buffer.from(wire.subarray(cut))]]);
  const store = { getRange: async (key: string, start: number, end: number) => objects.get(key)!.subarray(start, end) } as unknown as ObjectStore;
  const end = frames.at(-1)!;
  const manifest: Manifest = {
    version: 1, client: 'c', volume: 'v', snapshot: 's1', uuid: 'u', parentUuid: null, transferId: 't', chunkSize: CHUNK,
    frames: end.index, wireBytes: wire.length, rawBytes: end.rawOffset, chain: end.chain.toString('hex'), segments,
  };
  return { manifest, objects, store };
}

const read = { fromFrame: 0, chain: null, skip: 0 };
const flip = (b: Buffer, at: number) => void (b[at] = b[at]! ^ 0xff);

test('a stored stream read back whole verifies, from its first frame to the end frame', async () => {
  const { manifest, store } = await stored();
  const body = await openStoredStream(store, manifest, read);
  let bytes = 0;
  for await (const piece of body) bytes += (piece as Buffer).length;
  assert.equal(bytes, manifest.wireBytes);
});

test('damage in the first segment read refuses the restore as the archive\'s object damaged, naming it', async () => {
  const { manifest, objects, store } = await stored();
  flip(objects.get('seg-0')!, 200);
  const err = await openStoredStream(store, manifest, read).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SnapferryError, String(err));
  assert.equal(err.code, 'archive_object_corrupt');
  assert.match(err.message, /the archive's segment seg-0 of s1 does not hold the frames its manifest says \(frame 0 .*\): the stored copy is damaged in the bucket/);
});

test('damage in a segment read while the answer goes out breaks it off with the same error, naming that segment', async () => {
  const { manifest, objects, store } = await stored();
  flip(objects.get('seg-1')!, 100);
  const body = await openStoredStream(store, manifest, read);
  const err = await (async () => {
    for await (const piece of body) void piece;
  })().then(() => null, (e: unknown) => e);
  assert.ok(err instanceof SnapferryError, String(err));
  assert.equal(err.code, 'archive_object_corrupt');
  assert.match(err.message, /segment seg-1 of s1 .*: the stored copy is damaged in the bucket/);
});
