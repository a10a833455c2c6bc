// The archive's upload store (server/archive/segment-uploads.ts) against a real RGW (test/fixtures/s3.ts): the store
// contract every upload store passes (test/server/store-contract.ts), then what is the archive's own: segments that
// hold exactly the frames sent, nothing stored of a frame that failed nor of a stream refused at frame 0 (whose
// upload a final refusal ends, failed), and an upload that one instance began (killed with SIGKILL) finished through
// another once its lease ran out, refused as transfer_locked while it ran.
import { describe, test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { META } from '../../core/protocol.ts';
import { SnapferryError } from '../../core/errors.ts';
import { statusOf } from '../../server/http-errors.ts';
import { stateKey, uploadFolder } from '../../server/archive/upload-state.ts';
import { SegmentUploads } from '../../server/archive/segment-uploads.ts';
import type { ObjectStore } from '../../server/archive/object-store.ts';
import { TusStore } from '../../server/upload-store/tus-store.ts';
import { rootOnly } from '../fixtures/btrfs.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';
import {
  CONTRACT_CHUNK, contractId, shouldApplyLengthRules, shouldCreateUploads, shouldExpireUploads, shouldRemoveUploads, shouldResumeAfterCut,
  shouldWriteFrames, type MakeSubject,
} from '../server/store-contract.ts';
import { sharedS3 } from './store-fixture.ts';
import { archiveUploads, cutArchiveRequest, heldBytes, readState, segmentKeys, type InstanceOptions } from './segment-fixture.ts';

const s3 = sharedS3();
const PERIOD_MS = 60_000;
const WRITER = path.join(import.meta.dirname, 'segment-writer.ts');

let instances = 0;
/** An instance (its own client and holder id) on a fresh bucket. */
async function instance(options: InstanceOptions = {}): Promise<{ objects: ObjectStore; uploads: SegmentUploads; bucket: Awaited<ReturnType<typeof s3.bucket>> }> {
  const bucket = await s3.bucket();
  const objects = bucket.store();
  return { objects, bucket, uploads: archiveUploads(objects, `instance-${++instances}`, options) };
}

const archive: MakeSubject = async (_t: TestContext) => {
  const { objects, uploads } = await instance({ expireAfterMs: PERIOD_MS });
  const store = new TusStore(uploads);
  return {
    store,
    held: (id) => heldBytes(objects, id),
    verified: async (id) => (await readState(objects, id)).segments.at(-1)?.wireEnd ?? 0,
    loseData: async (id) => objects.delete(`${uploadFolder(id)}${(await readState(objects, id)).segments[0]!.name}`),
    leftovers: (id) => segmentKeys(objects, id),
    idleSince: async (id, when) => {
      const got = (await objects.get(stateKey(id)))!;
      const state = { ...JSON.parse(got.body.toString()), touchedAt: when.toISOString() };
      assert.ok(await objects.swap(stateKey(id), Buffer.from(JSON.stringify(state)), got.etag));
    },
    keepsCutTail: false,
    cut: async (id, offset, bytes) => {
      await cutArchiveRequest(uploads, id, offset, bytes);
      return (await store.getUpload(id)).offset;
    },
  };
};

if (rootOnly.skip === false) {
  describe('the store contract, on the archive', () => {
    shouldCreateUploads(archive);
    shouldWriteFrames(archive);
    shouldResumeAfterCut(archive);
    shouldRemoveUploads(archive);
    shouldApplyLengthRules(archive);
    shouldExpireUploads(archive, PERIOD_MS);
  });
}

async function framed(frames: number, seed = 11): Promise<{ wire: Buffer; ends: number[] }> {
  const { wire, frames: info } = await encode(mixedBytes(frames * CONTRACT_CHUNK, CONTRACT_CHUNK, seed), { chunkSize: CONTRACT_CHUNK, level: 1 });
  return { wire, ends: info.map((f) => f.wireOffset + f.wireLength) };
}

async function created(uploads: SegmentUploads): Promise<string> {
  const id = contractId();
  await uploads.create({ id, metadata: { [META.chunkSize]: String(CONTRACT_CHUNK) }, creationDate: new Date().toISOString() });
  return id;
}

async function request(uploads: SegmentUploads, id: string, offset: number, bytes: Buffer): Promise<number> {
  const body = new PassThrough();
  const writing = uploads.write(id, body, offset);
  body.end(bytes);
  return writing;
}

const failure = (p: Promise<unknown>): Promise<SnapferryError> =>
  p.then(() => assert.fail('expected a refusal'), (err: unknown) => {
    assert.ok(err instanceof SnapferryError, `not a SnapferryError: ${String(err)}`);
    return err;
  });

test('a request cut mid-frame is acknowledged to its last whole frame, resumes there, and the segments are exactly the frames sent', rootOnly, async () => {
  const { wire, ends } = await framed(8);
  // A segment every two frames or so, so that a request leaves several.
  const { objects, uploads } = await instance({ limits: { segmentBytes: ends[1]!, segmentMs: 600_000 } });
  const id = await created(uploads);
  const cutAt = ends[4]! + Math.floor((ends[5]! - ends[4]!) / 2);
  await cutArchiveRequest(uploads, id, 0, wire.subarray(0, cutAt));
  const head = await uploads.get(id);
  assert.equal(head.offset, ends[4]!, 'HEAD: the end of the last whole frame, stored');
  assert.deepEqual(await heldBytes(objects, id), wire.subarray(0, ends[4]!));
  assert.equal((await failure(request(uploads, id, cutAt, wire.subarray(cutAt)))).code, 'offset_mismatch', 'the cut part of frame 5 was not kept');

  assert.equal(await request(uploads, id, head.offset, wire.subarray(head.offset)), wire.length);
  const state = await readState(objects, id);
  assert.ok(state.segments.length >= 3, `${state.segments.length} segments`);
  assert.deepEqual(await heldBytes(objects, id), wire, 'the segments, in order, are the stream byte for byte');
  // Each segment holds whole frames: it starts where a frame starts and ends where one ends, the last with the end frame.
  const bounds = new Set([0, ...ends]);
  for (const s of state.segments) assert.ok(bounds.has(s.wireStart) && bounds.has(s.wireEnd), `${s.name}: ${s.wireStart}..${s.wireEnd}`);
  assert.equal(state.segments.at(-1)!.end, true);
  assert.deepEqual((await segmentKeys(objects, id)).sort(), state.segments.map((s) => `${uploadFolder(id)}${s.name}`).sort(), 'no segment the state does not name');
  assert.equal((await uploads.get(id)).size, wire.length);
});

test('a corrupt frame is refused (460) and nothing of it is stored; the frames before it in the request are', rootOnly, async () => {
  const { wire, ends } = await framed(4);
  const { objects, uploads } = await instance();
  const id = await created(uploads);
  const bad = Buffer.from(wire.subarray(0, ends[2]!));
  bad[ends[2]! - 1]! ^= 0xff;
  const err = await failure(request(uploads, id, 0, bad));
  assert.match(err.code, /^frame_/);
  assert.equal(statusOf(err), 460);
  assert.equal((await uploads.get(id)).offset, ends[1]!);
  assert.deepEqual(await heldBytes(objects, id), wire.subarray(0, ends[1]!));
  for (const key of await segmentKeys(objects, id)) {
    const body = (await objects.get(key))!.body;
    assert.equal(body.indexOf(bad.subarray(ends[1]!, ends[1]! + 64)), -1, `${key} holds part of the corrupt frame`);
  }
  assert.equal((await segmentKeys(objects, id)).length, 1);
  assert.equal(await request(uploads, id, ends[1]!, wire.subarray(ends[1]!)), wire.length);
  assert.deepEqual(await heldBytes(objects, id), wire);
});

test('the sink hears of frame 0 before anything is stored (and can refuse it), and of the verified end once it is stored', rootOnly, async () => {
  const { wire } = await framed(3);
  const refusing = (err: SnapferryError) => instance({ sink: () => ({ start: () => { throw err; }, complete: () => assert.fail('no end') }) });
  const refused = await refusing(new SnapferryError('parent_changed', 'its parent changed on the client since it was sent'));
  const no = await created(refused.uploads);
  assert.equal((await failure(request(refused.uploads, no, 0, wire))).code, 'parent_changed');
  assert.deepEqual(await segmentKeys(refused.objects, no), [], 'nothing of a refused stream is stored');
  // A final refusal (not retryable) ends the upload with it before the request answers: a tombstone that says why.
  const ended = await readState(refused.objects, no);
  assert.deepEqual([ended.tombstone, ended.error?.code, ended.error?.message], ['removed', 'parent_changed', 'its parent changed on the client since it was sent']);
  // One that may heal (the bucket down a moment) leaves the upload as it was, for the client's retry.
  const doubt = await refusing(new SnapferryError('store_unavailable', 'the store did not answer', { retryable: true }));
  const maybe = await created(doubt.uploads);
  assert.equal((await failure(request(doubt.uploads, maybe, 0, wire))).code, 'store_unavailable');
  assert.equal((await doubt.uploads.get(maybe)).offset, 0);
  assert.equal((await readState(doubt.objects, maybe)).tombstone, null);

  const heard: string[] = [];
  const ok = await instance({
    sink: (id) => ({
      start: (first) => void heard.push(`start ${id} ${first.raw?.length} ${first.sealedBy}`),
      complete: async (progress, segments) => {
        // Stored and recorded by now: what the manifest will be written from.
        assert.deepEqual((await readState(ok.objects, id)).segments, segments);
        heard.push(`complete ${progress.wireOffset} ${progress.framesVerified} ${progress.complete}`);
      },
    }),
  });
  const id = await created(ok.uploads);
  assert.equal(await request(ok.uploads, id, 0, wire), wire.length);
  assert.equal(await request(ok.uploads, id, wire.length, Buffer.alloc(0)), wire.length, 'the end frame is not heard of twice');
  assert.deepEqual(heard, [`start ${id} ${CONTRACT_CHUNK} null`, `complete ${wire.length} 3 true`]);
});

test('an upload begun by one instance (killed -9 mid-request) is refused to another while its lease runs, then finished by it', rootOnly, async (t) => {
  const { wire, ends } = await framed(6);
  const LEASE_MS = 4_000;
  const a = await instance();
  const id = await created(a.uploads);
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-segments-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  await fs.writeFile(path.join(dir, 'wire'), wire);
  // A stores frames 0-1 as a segment, has frame 2 verified but not yet stored, and half of frame 3, when it dies.
  const send = ends[2]! + Math.floor((ends[3]! - ends[2]!) / 2);
  const { server } = a.bucket;
  const child = execa('node', ['--import', 'tsx', WRITER], {
    reject: false, buffer: false, stdin: 'ignore', stderr: 'inherit',
    env: {
      S3_ENDPOINT: server.endpoint, S3_BUCKET: a.bucket.name, S3_KEY: server.accessKeyId, S3_SECRET: server.secretAccessKey,
      UPLOAD_ID: id, WIRE_FILE: path.join(dir, 'wire'), SEND_BYTES: String(send), LEASE_MS: String(LEASE_MS),
      SEGMENT_BYTES: String(ends[1]!), HOLDER: 'instance-A',
    },
  });
  t.after(() => void child.kill('SIGKILL'));
  const [line] = (await Promise.race([once(child.stdout!, 'data'), sleep(60_000).then(() => [Buffer.from('timeout')])])) as Buffer[];
  assert.equal(line!.toString().trim(), 'sent');
  for (let end = Date.now() + 10_000; (await readState(a.objects, id)).segments.length === 0 && Date.now() < end; ) await sleep(20);

  const b = archiveUploads(a.bucket.store(), 'instance-B', { leaseMs: LEASE_MS });
  assert.equal((await b.get(id)).offset, ends[1]!, 'HEAD through B: what A stored and recorded');
  // Longer than the lease: A renews it while it lives.
  for (let end = Date.now() + LEASE_MS * 1.5; Date.now() < end; await sleep(500)) {
    const locked = await failure(request(b, id, ends[1]!, wire.subarray(ends[1]!)));
    assert.equal(locked.code, 'transfer_locked');
    assert.equal(locked.retryable, true);
    assert.equal(statusOf(locked), 409);
    assert.ok(Number(locked.details.retryAfterSeconds) >= 1);
  }

  child.kill('SIGKILL');
  await child;
  const killedAt = Date.now();
  let offset: number | undefined;
  let tries = 0;
  while (offset === undefined) {
    tries++;
    offset = await request(b, id, ends[1]!, wire.subarray(ends[1]!)).catch((err: unknown) => {
      assert.ok(err instanceof SnapferryError && err.code === 'transfer_locked', `B's write failed: ${String(err)}`);
      assert.ok(Date.now() - killedAt < LEASE_MS * 5, 'the lease of a killed instance never ran out');
      return sleep(250).then(() => undefined);
    });
  }
  assert.ok(tries > 1, 'the lease outlived its holder a while');
  assert.equal(offset, wire.length);
  assert.deepEqual(await heldBytes(a.objects, id), wire, 'A\'s segment and B\'s, in order, are the stream');
  assert.equal((await b.get(id)).size, wire.length);
  const state = await readState(a.objects, id);
  assert.ok(state.generation >= 2, `fenced by B's generation (${state.generation})`);
});

test('a holder whose lease was taken over while it paused writes nothing: the newer generation in state.json fences it (lease_lost)', rootOnly, async () => {
  const { wire, ends } = await framed(4);
  const b = await instance();
  const id = await created(b.uploads);
  assert.equal(await request(b.uploads, id, 0, wire.subarray(0, ends[0]!)), ends[0]!);
  const stamped = (await readState(b.objects, id)).generation;
  // A took the lease before B did (one generation less), then paused past it; by its own clock it still holds it.
  const paused = { generation: stamped - 1, check: () => undefined, keepAlive: () => () => undefined, release: async () => undefined };
  const a = new SegmentUploads({ objects: b.bucket.store(), leases: { acquire: async () => paused } });
  const before = await b.objects.get(stateKey(id));
  const err = await failure(request(a, id, ends[0]!, wire.subarray(ends[0]!, ends[1]!)));
  assert.equal(err.code, 'lease_lost');
  assert.equal(err.retryable, true);
  assert.equal((await b.objects.get(stateKey(id)))!.etag, before!.etag, 'state.json untouched');
  assert.equal((await segmentKeys(b.objects, id)).length, 1, 'no segment stored');
  assert.equal(await request(b.uploads, id, ends[0]!, wire.subarray(ends[0]!)), wire.length);
});
