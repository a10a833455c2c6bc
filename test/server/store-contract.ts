/**
 * What every upload store must do, as tus sees it through its DataStore (server/upload-store/tus-store.ts), in the
 * manner of tus-node-server's shared store tests (packages/utils/src/test/stores.ts): each function registers its
 * cases against the stores a test file makes, so the bare spool store and the composed one (with its wrappers) are
 * held to the same rules. Real files in a temporary folder; the streams are real frames.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upload, type DataStore } from '@tus/utils';
import { META } from '../../core/protocol.ts';
import type { ServerLayout } from '../../server/layout.ts';
import type { Spool } from '../../server/spool/spool.ts';
import { encode, mixedBytes } from '../wire/frame-helpers.ts';

export const CONTRACT_CHUNK = 64 * 1024;

/** A store under test, on its own folder. */
export interface ContractSubject {
  store: DataStore;
  spool: Spool;
  layout: ServerLayout;
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
    const { store, layout } = await make(t);
    for (const ext of ['creation', 'creation-with-upload', 'creation-defer-length', 'termination']) assert.equal(store.hasExtension(ext), true, ext);
    const id = contractId();
    const created = await store.create(newUpload(id));
    assert.equal(created.id, id);
    const got = await store.getUpload(id);
    assert.equal(got.offset, 0);
    assert.equal(got.size, undefined, 'a deferred length stays deferred');
    assert.deepEqual(got.metadata, { [META.chunkSize]: String(CONTRACT_CHUNK), name: 'snap-ü', empty: null });
    assert.equal((await fs.stat(layout.spoolFile(id))).size, 0);
  });

  test('contract: getUpload of an upload that does not exist is a 404; of one whose data is gone (its record stays), a 410', async (t) => {
    const { store, layout } = await make(t);
    assert.equal((await refusal(store.getUpload(contractId()))).status_code, 404);
    const id = contractId();
    await store.create(newUpload(id));
    await fs.rm(layout.spoolFile(id));
    const gone = await refusal(store.getUpload(id));
    assert.equal(gone.status_code, 410);
    assert.equal(gone.code, 'upload_gone');
  });
}

export function shouldWriteFrames(make: MakeSubject): void {
  test('contract: a write at the offset takes a whole stream; the length shows once its end frame verified', async (t) => {
    const { store, layout } = await make(t);
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
    assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire);
  });

  test('contract: a write at another offset is a retryable 409 offset_mismatch, and changes nothing', async (t) => {
    const { store, layout } = await make(t);
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
    assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire.subarray(0, ends[1]!));
  });

  test('contract: bytes that are not frames are refused (460) and none of them are kept', async (t) => {
    const { store, layout } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    await writeAll(store, id, 0, wire.subarray(0, ends[0]!));
    const bad = Buffer.from(wire.subarray(ends[0]!, ends[1]!));
    bad[bad.length - 1]! ^= 0xff;
    const err = await refusal(writeAll(store, id, ends[0]!, bad));
    assert.match(err.code ?? '', /^frame_/);
    assert.equal(err.status_code, 460);
    assert.equal((await fs.stat(layout.spoolFile(id))).size, ends[0]!);
  });
}

export function shouldResumeAfterCut(make: MakeSubject, cut: (s: ContractSubject, id: string, offset: number, bytes: Buffer) => Promise<number>): void {
  test('contract: a write cut mid-frame keeps the whole frames and the part of the next; the client resumes from there', async (t) => {
    const subject = await make(t);
    const { store, spool, layout } = subject;
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    const cutAt = ends[3]! + Math.floor((ends[4]! - ends[3]!) / 2);
    const offset = await cut(subject, id, 0, wire.subarray(0, cutAt));
    assert.equal(offset, cutAt, 'every byte that arrived is kept');
    assert.equal((await spool.progress(id)).wireOffset, ends[3]!, 'verified: the last whole frame');
    assert.equal(await writeAll(store, id, offset, wire.subarray(offset)), wire.length);
    assert.deepEqual(await fs.readFile(layout.spoolFile(id)), wire);
    assert.equal((await store.getUpload(id)).size, wire.length);
  });
}

export function shouldRemoveUploads(make: MakeSubject): void {
  test('contract: remove deletes the upload and every file of it; an upload that does not exist is a 404', async (t) => {
    const { store, layout } = await make(t);
    const id = contractId();
    await store.create(newUpload(id));
    const { wire, ends } = await framed();
    await writeAll(store, id, 0, wire.subarray(0, ends[1]!));
    await store.remove(id);
    for (const f of layout.spoolFiles(id)) await assert.rejects(fs.stat(f), { code: 'ENOENT' }, f);
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
    const { store, layout } = await make(t);
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
    for (const id of [idle, complete]) await fs.utimes(layout.spoolFile(id), old, old);
    await sleep(5);
    assert.equal(await store.deleteExpired(), 1);
    await assert.rejects(fs.stat(layout.spoolFile(idle)), { code: 'ENOENT' });
    assert.equal((await store.getUpload(complete)).offset, wire.length);
    assert.equal((await store.getUpload(fresh)).offset, 0);
  });
}
