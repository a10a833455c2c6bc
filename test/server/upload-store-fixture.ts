/**
 * The upload store as the server composes it (server/upload-store/index.ts: the spool's store inside ownership,
 * expiry, quota and full-disk wrappers) on a real folder, seen through its tus adapter, with the core's hooks replaced
 * by what each test needs. The frames that verify go straight to the spool, with no receive behind it.
 */
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { Upload } from '@tus/utils';
import { META } from '../../core/protocol.ts';
import { SnapferryError } from '../../core/errors.ts';
import { ServerLayout } from '../../server/layout.ts';
import { Spool, type FrameSink } from '../../server/spool/spool.ts';
import { uploadStore, type ExpiryHooks, type UploadGuard, type UploadOwner, type WriteMeter } from '../../server/upload-store/index.ts';
import { TusStore } from '../../server/upload-store/tus-store.ts';

export const CHUNK = 64 * 1024;
export const NO_LIMIT: WriteMeter = { admit: () => null, close: () => undefined };

export interface FixtureOptions {
  owner?: Partial<UploadOwner>;
  expiry?: Partial<ExpiryHooks>;
  expireAfterMs?: number;
  quota?: Partial<UploadGuard>;
  sink?: Partial<FrameSink>;
}

export async function uploadStoreIn(t: { after(fn: () => Promise<void>): void }, options: FixtureOptions = {}) {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-uploads-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const layout = new ServerLayout(dir);
  await fs.mkdir(layout.spool, { recursive: true });
  const spool = new Spool(layout);
  /** The wire length of each stream that completed, in order. */
  const completed: number[] = [];
  const sink: FrameSink = {
    start: () => undefined,
    stored: () => false,
    complete: (progress) => void completed.push(progress.wireOffset),
    endRefused: () => undefined,
    ...options.sink,
  };
  const uploads = uploadStore({
    spool,
    ingest: { write: (id, body, offset, chunkSize) => spool.append(id, body, offset, chunkSize, sink) },
    owner: {
      closedError: () => null,
      // As the core's termination: an upload it does not know is not found; otherwise its files go.
      terminate: async (id) => {
        if (!existsSync(layout.uploadRecordFile(id))) throw new SnapferryError('not_found', `transfer ${id} not found`);
        await spool.drop(id);
      },
      ...options.owner,
    },
    expiry: { expire: () => null, expired: () => undefined, expiredError: () => null, ...options.expiry },
    expireAfterMs: options.expireAfterMs ?? 0,
    quota: { checkSize: () => Promise.resolve(null), openWrite: () => Promise.resolve(NO_LIMIT), onRefused: () => Promise.resolve(), ...options.quota },
    // A full disk is the pause, as on a filesystem the upload fits.
    fullDisk: () => Promise.resolve(null),
  });
  const store = new TusStore(uploads);
  /** Creates upload `id` as a tus POST does (no length: deferred), dated `created`. */
  const create = (id: string, created = new Date(), size?: number) =>
    store.create(new Upload({ id, offset: 0, size, metadata: { [META.chunkSize]: String(CHUNK) }, creation_date: created.toISOString() }));
  return { dir, layout, spool, uploads, store, completed, create };
}

/**
 * Writes `bytes` as one request that is then cut (its stream fails) once the spool has taken every byte of it (a line
 * that cut after them); returns the offset a HEAD reports after it.
 */
export async function cutRequest(store: TusStore, spool: Spool, id: string, offset: number, bytes: Buffer): Promise<number> {
  const request = new PassThrough();
  request.on('error', () => undefined);
  const target = spool.arrived(id) + bytes.length;
  const writing = store.write(request, id, offset);
  request.write(bytes);
  for (let end = Date.now() + 5000; spool.arrived(id) < target && Date.now() < end; ) await sleep(2);
  request.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  await writing.catch(() => undefined);
  return (await store.getUpload(id)).offset;
}
