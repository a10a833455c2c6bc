/**
 * What every upload store must do, as tus sees it through its DataStore (server/upload-store/tus-store.ts), in the
 * manner of tus-node-server's shared store tests (packages/utils/src/test/stores.ts): each function registers its
 * cases against the stores a test file makes, so the bare spool store and the composed one (with its wrappers) are
 * held to the same rules, and so is the archive's store over a real S3 server (test/archive/segment-uploads.test.ts).
 * A subject says how to look at what its store holds (a spool file, segment objects); the streams are real frames.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upload, type DataStore } from '@tus/utils';
import { META } from '../../core/protocol.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';

export const CONTRACT_CHUNK = 64 * 1024;

/** A store under test, on its own folder or bucket, and how to look at what it holds. */
export interface ContractSubject {
  store: DataStore;
  /** The bytes the store holds for an upload, in stream order (its spool file; its segments, concatenated). */
  held(id: string): Promise<Buffer>;
  /** The end of the last whole frame the store holds verified. */
  verified(id: string): Promise<number>;
  /** Deletes the upload's data and leaves what records it (a spool file; a segment object). */
  loseData(id: string): Promise<void>;
  /** What is left of an upload's data (paths, keys); none once it is removed. */
  leftovers(id: string): Promise<string[]>;
  /** Makes the upload look untouched since `when`, as expiry sees it. */
  idleSince(id: string, when: Date): Promise<void>;
  /**
   * Whether a request cut mid-frame keeps the part of the frame that arrived (the local spool, on its own disk) or
   * only the whole frames (the archive: the next request may reach another instance).
   */
  keepsCutTail: boolean;
  /** Writes `bytes` as one request that is cut once the store has taken all of them; resolves with HEAD's offset. */
  cut(id: string, offset: number, bytes: Buffer): Promise<number>;
}

export type MakeSubject = (t: TestContext) => Promise<ContractSubject>;

let next = 0;
/** A fresh upload id (32 hex digits, as the server names them). */
export function contractId(): string {
  return (++next).toString(16).padStart(32, '0');
}

function newUpload(id: string, size?: number, created = new Date()): Upload {
  return new Upload({ id, offset: 0, size, metadata: { [META.chunkSize]: String(CONTRACT_CHUNK), name: 'snap-ü', empty: null }, creation_date: created.toISOString() });
}

/** A framed stream of a few frames, and where each frame ends on the wire. */
async function framed(frames = 6, seed = 7): Promise<{ wire: Buffer; ends: number[] }> {
  const { wire, frames: info } = await encode(mixedBytes(frames * CONTRACT_CHUNK, CONTRACT_CHUNK, seed), { chunkSize: CONTRACT_CHUNK, level: 1 });
  return { wire, ends: info.map((f) => f.wireOffset + f.wireLength) };
}

async function writeAll(store: DataStore, id: string, offset: number, bytes: Buffer): Promise<number> {
  const request = new PassThrough();
  const writing = store.write(request, id, offset);
  request.end(bytes);
  return writing;
}

async function refusal(p: Promise<unknown>): Promise<{ code?: string; status_code?: number; retryable?: boolean }> {
  return p.then(
    () => assert.fail('expected a refusal'),
    (err: unknown) => err as { code?: string; status_code?: number; retryable?: boolean },
  );
}

export function shouldCreateUploads(make: MakeSubject): void {
  test('contract: create reports the creation extensions and makes an empty upload with its metadata', async (t) => {
    const { store, held } = await make(t);
    for (const ext of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination']) assert.equal(store.hasExtension(ext), true, ext);
    const id = contractId();
    const created = await store.create(newUpload(id));
    assert.equal(created.id, id);
    const got = await store.getUpload(id);
    assert.equal(got.offset, 0);
    assert.equal(got.size, undefined, 'a deferred length stays deferred');
    assert.deepEqual(got.metadata, { [META.chunkSize]: String(CONTRACT_CHUNK), name: 'snap-ü', empty: null });
    assert.equal((await held(id)).length, 0);
  });

  test('contract: getUpload of an upload that does not exist is a 404; of one whose data is gone (its record stays), a 410', async (t) => {
    const { store, loseData } = await make(t);
    assert.equal((await refusal(store.getUpload(contractId()))).status_code, 404);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed(2);
    await writeAll(store, id, 0, wire.subarray(0, ends[0]!));
    await loseData(id);
    const gone = await refusal(store.getUpload(id));
    assert.equal(gone.status_code, 410);
    assert.equal(gone.code, 'upload_gone');
  });
}

export function shouldWriteFrames(make: MakeSubject): void {
  test('contract: a write at the offset takes a whole stream; the length shows once its end frame verified', async (t) => {
    const { store, held } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    const half = ends[2]!;
    assert.equal(await writeAll(store, id, 0, wire.subarray(0, half)), half);
    const midway = await store.getUpload(id);
    assert.equal(midway.offset, half);
    assert.equal(midway.size, undefined, 'no length before the end frame');
    assert.equal(await writeAll(store, id, half, wire.subarray(half)), wire.length);
    const done = await store.getUpload(id);
    assert.equal(done.offset, wire.length);
    assert.equal(done.size, wire.length);
    assert.deepEqual(await held(id), wire);
  });

  test('contract: a write at another offset is a retryable 409 offset_mismatch, and changes nothing', async (t) => {
    const { store, held } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    await writeAll(store, id, 0, wire.subarray(0, ends[1]!));
    for (const offset of [0, ends[1]! + 1, ends[3]!]) {
      const err = await refusal(writeAll(store, id, offset, wire.subarray(offset)));
      assert.equal(err.code, 'offset_mismatch', `at ${offset}`);
      assert.equal(err.status_code, 409);
      assert.equal(err.retryable, true);
    }
    assert.equal((await store.getUpload(id)).offset, ends[1]!);
    assert.deepEqual(await held(id), wire.subarray(0, ends[1]!));
  });

  test('contract: bytes that are not frames are refused (460) and none of them are kept', async (t) => {
    const { store, held } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    await writeAll(store, id, 0, wire.subarray(0, ends[0]!));
    const bad = Buffer.from(wire.subarray(ends[0]!, ends[1]!));
    bad[bad.length - 1]! ^= 0xff;
    const err = await refusal(writeAll(store, id, ends[0]!, bad));
    assert.match(err.code ?? '', /^frame_/);
    assert.equal(err.status_code, 460);
    assert.deepEqual(await held(id), wire.subarray(0, ends[0]!));
    assert.equal((await store.getUpload(id)).offset, ends[0]!);
  });
  test('contract: the whole frames before a corrupt one in the same request (one chunk) are kept, and nothing of it', async (t) => {
    const { store, held } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    const bytes = Buffer.from(wire.subarray(0, ends[2]!));
    bytes[ends[2]! - 1]! ^= 0xff;
    const err = await refusal(writeAll(store, id, 0, bytes));
    assert.equal(err.status_code, 460);
    assert.equal((await store.getUpload(id)).offset, ends[1]!);
    assert.deepEqual(await held(id), wire.subarray(0, ends[1]!));
  });
}

export function shouldResumeAfterCut(make: MakeSubject): void {
  test('contract: a write cut mid-frame keeps the whole frames (and, where kept, the part of the next); the client resumes from there', async (t) => {
    const subject = await make(t);
    const { store, held, verified, keepsCutTail, cut } = subject;
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    const cutAt = ends[3]! + Math.floor((ends[4]! - ends[3]!) / 2);
    const offset = await cut(id, 0, wire.subarray(0, cutAt));
    assert.equal(offset, keepsCutTail ? cutAt : ends[3]!, keepsCutTail ? 'every byte that arrived is kept' : 'the whole frames are kept');
    assert.equal(await verified(id), ends[3]!, 'verified: the last whole frame');
    assert.equal(await writeAll(store, id, offset, wire.subarray(offset)), wire.length);
    assert.deepEqual(await held(id), wire);
    assert.equal((await store.getUpload(id)).size, wire.length);
  });
}

export function shouldRemoveUploads(make: MakeSubject): void {
  test('contract: remove deletes the upload and every file of it; an upload that does not exist is a 404', async (t) => {
    const { store, leftovers } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    await writeAll(store, id, 0, wire.subarray(0, ends[1]!));
    assert.notDeepEqual(await leftovers(id), [], 'the upload holds data before');
    await store.remove(id);
    assert.deepEqual(await leftovers(id), []);
    assert.equal((await refusal(store.getUpload(id))).status_code, 404);
    assert.equal((await refusal(store.remove(contractId()))).status_code, 404);
  });
}

export function shouldApplyLengthRules(make: MakeSubject): void {
  test('contract: a declared length binds nothing before the end frame: hidden, and a stream of another length completes', async (t) => {
    const { store } = await make(t);
    const id = contractId();
    await store.create(newUpload(id, 1000));
    assert.equal((await store.getUpload(id)).size, undefined, 'the length given at creation is not shown');
    await store.declareUploadLength(id, 5);
    assert.equal((await store.getUpload(id)).size, undefined, 'nor one declared later');
    const { wire } = await framed();
    assert.equal(await writeAll(store, id, 0, wire), wire.length);
    assert.equal((await store.getUpload(id)).size, wire.length, 'the end frame says the length');
  });

  test('contract: once complete, the same length may be declared again; another one is a 400 length_mismatch', async (t) => {
    const { store } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire } = await framed(3);
    await writeAll(store, id, 0, wire);
    await store.declareUploadLength(id, wire.length);
    const err = await refusal(store.declareUploadLength(id, wire.length + 1));
    assert.equal(err.code, 'length_mismatch');
    assert.equal(err.status_code, 400);
    assert.equal((await store.getUpload(id)).size, wire.length);
  });
}

export function shouldExpireUploads(make: MakeSubject, periodMs: number): void {
  test('contract: expiry deletes an upload idle past the period, keeps a complete one, and reports the period', async (t) => {
    const { store, leftovers, idleSince } = await make(t);
    assert.equal(store.hasExtension('expiration'), true);
    assert.equal(store.getExpiration(), periodMs);
    const old = new Date(Date.now() - 2 * periodMs);
    const idle = contractId();
    const complete = contractId();
    const fresh = contractId();
    await store.create(newUpload(idle, undefined, old));
    await store.create(newUpload(complete, undefined, old));
    await store.create(newUpload(fresh));
    const { wire, ends } = await framed(3);
    await writeAll(store, idle, 0, wire.subarray(0, ends[0]!));
    await writeAll(store, complete, 0, wire);
    for (const id of [idle, complete]) await idleSince(id, old);
    await sleep(5);
    assert.equal(await store.deleteExpired(), 1);
    assert.deepEqual(await leftovers(idle), []);
    assert.equal((await store.getUpload(complete)).offset, wire.length);
    assert.equal((await store.getUpload(fresh)).offset, 0);
  });
}
