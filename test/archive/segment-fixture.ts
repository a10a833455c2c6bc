/**
 * The archive's upload store (server/archive/segment-uploads.ts) on a test bucket, as one server instance makes it
 * (its own S3 client, its own lease holder id), and how a test looks into what it stored.
 */
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { ObjectStore } from '../../server/archive/object-store.ts';
import { SegmentUploads, type SegmentUploadsOptions } from '../../server/archive/segment-uploads.ts';
import { bucketLeases } from '../../server/archive/upload-lease.ts';
import { parseState, SEGMENT_PREFIX, stateKey, uploadFolder, type UploadState } from '../../server/archive/upload-state.ts';

export interface InstanceOptions extends Omit<SegmentUploadsOptions, 'objects' | 'leases'> {
  leaseMs?: number;
}

/** One instance's store: HOLDER names it in the upload's lease. */
export function archiveUploads(objects: ObjectStore, holder: string, options: InstanceOptions = {}): SegmentUploads {
  const { leaseMs, ...rest } = options;
  return new SegmentUploads({ objects, leases: bucketLeases(objects, holder, leaseMs === undefined ? {} : { leaseMs }), ...rest });
}

export async function readState(objects: ObjectStore, id: string): Promise<UploadState> {
  const got = await objects.get(stateKey(id));
  if (!got) throw new Error(`no state.json for ${id}`);
  return parseState(id, got.body);
}

/** The upload's segments as state.json lists them, concatenated: the bytes the archive holds, in stream order. */
export async function heldBytes(objects: ObjectStore, id: string): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const s of (await readState(objects, id)).segments) {
    const got = await objects.get(`${uploadFolder(id)}${s.name}`);
    if (!got) throw new Error(`segment ${s.name} of ${id} is missing`);
    parts.push(got.body);
  }
  return Buffer.concat(parts);
}

/** Every segment object in the upload's folder, listed or not. */
export async function segmentKeys(objects: ObjectStore, id: string): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of objects.list(`${uploadFolder(id)}${SEGMENT_PREFIX}`)) keys.push(o.key);
  return keys;
}

/**
 * Writes `bytes` as one request to `uploads` and cuts it (its stream fails) once the store has taken every byte;
 * resolves with the request's outcome.
 */
export async function cutArchiveRequest(uploads: SegmentUploads, id: string, offset: number, bytes: Buffer): Promise<unknown> {
  const request = new PassThrough();
  request.on('error', () => undefined);
  const target = uploads.arrived(id) + bytes.length;
  const writing = uploads.write(id, request, offset).then(() => null, (err: unknown) => err);
  request.write(bytes);
  for (let end = Date.now() + 10_000; uploads.arrived(id) < target && Date.now() < end; ) await sleep(5);
  request.destroy(Object.assign(new Error('aborted'), { code: 'ECONNRESET' }));
  return writing;
}
