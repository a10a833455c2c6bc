/**
 * tus's record of an upload, ID.json beside its spool: the id, metadata and creation date the creation request
 * brought. Written as @tus/file-store's FileConfigstore wrote it, so the records of a server before this one read the
 * same. The length is not kept here: it is known once the end frame verified, and the spool says so.
 */
import fs from 'node:fs/promises';
import type { ServerLayout } from '../layout.ts';
import type { NewUpload, UploadMetadata } from './store.ts';

export interface UploadRecord {
  id: string;
  metadata: UploadMetadata;
  creationDate: string;
}

/** The record of upload `id`, or null when there is none (or it cannot be read). */
export async function readUploadRecord(layout: ServerLayout, id: string): Promise<UploadRecord | null> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(await fs.readFile(layout.uploadRecordFile(id), 'utf8'));
  } catch {
    return null;
  }
  if (parsed === null || typeof parsed !== 'object') return null;
  const r = parsed as { metadata?: unknown; creation_date?: unknown };
  return {
    id,
    metadata: r.metadata !== null && typeof r.metadata === 'object' ? (r.metadata as UploadMetadata) : {},
    creationDate: typeof r.creation_date === 'string' ? r.creation_date : '',
  };
}

export async function writeUploadRecord(layout: ServerLayout, upload: NewUpload): Promise<void> {
  // The shape @tus/file-store wrote: a deferred length stays absent, as JSON.stringify leaves undefined out.
  const record = { id: upload.id, size: upload.size, offset: 0, metadata: upload.metadata, creation_date: upload.creationDate };
  await fs.writeFile(layout.uploadRecordFile(upload.id), JSON.stringify(record));
}
