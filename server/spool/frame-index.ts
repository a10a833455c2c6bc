/**
 * The index kept beside each spool file: one fixed-size record per verified frame, appended after the frame's bytes
 * are written. Past the index's last record the spool holds at most the head of the frame in flight (what a cut
 * PATCH brought of it, kept so the client sends only the rest); the frame is verified whole before its record is
 * written, and the spool's repair at open cuts anything longer back (server/spool/spool.ts).
 *
 * Record (64 bytes, big-endian): u64 frame index | u64 wire end | u64 raw end | u8 kind (0 data, 1 end) | 7 zero
 * bytes | 32 bytes chain hash after this frame.
 */
import fs from 'node:fs/promises';

export const INDEX_RECORD_SIZE = 64;

export interface IndexRecord {
  index: number;
  wireEnd: number;
  rawEnd: number;
  kind: 'data' | 'end';
  chain: Buffer;
}

export function encodeIndexRecord(r: IndexRecord): Buffer {
  const b = Buffer.alloc(INDEX_RECORD_SIZE);
  b.writeBigUInt64BE(BigInt(r.index), 0);
  b.writeBigUInt64BE(BigInt(r.wireEnd), 8);
  b.writeBigUInt64BE(BigInt(r.rawEnd), 16);
  b.writeUInt8(r.kind === 'end' ? 1 : 0, 24);
  r.chain.copy(b, 32);
  return b;
}

export function decodeIndexRecord(b: Buffer): IndexRecord {
  return {
    index: Number(b.readBigUInt64BE(0)),
    wireEnd: Number(b.readBigUInt64BE(8)),
    rawEnd: Number(b.readBigUInt64BE(16)),
    kind: b.readUInt8(24) === 1 ? 'end' : 'data',
    chain: Buffer.from(b.subarray(32, 64)),
  };
}

/**
 * What is wrong with `b` as record number `position` of an index, or null when the server may have written it: every
 * record says its own position (an end frame's index is the count of data frames before it, which is its position),
 * a kind of 0 or 1, zero padding, and a frame that ends past the stream's first byte. An index damaged on disk (bytes
 * zeroed or overwritten) fails one of these; a changed chain alone passes, and shows as a stream that differs.
 */
export function recordProblem(b: Buffer, position: number): string | null {
  const index = b.readBigUInt64BE(0);
  if (index !== BigInt(position)) return `it says frame ${index}, not ${position}`;
  const kind = b.readUInt8(24);
  if (kind > 1) return `its kind is ${kind}, not 0 (data) or 1 (end)`;
  if (b.subarray(25, 32).some((x) => x !== 0)) return 'its padding bytes are not zero';
  const wireEnd = b.readBigUInt64BE(8);
  if (wireEnd === 0n || wireEnd > BigInt(Number.MAX_SAFE_INTEGER)) return `it says its frame ends at byte ${wireEnd}`;
  if (b.readBigUInt64BE(16) > BigInt(Number.MAX_SAFE_INTEGER)) return 'its raw length is out of range';
  return null;
}

/** Record `i` as it is on disk with what is wrong with it (recordProblem), or null past the end. */
export async function readCheckedRecord(file: string, i: number): Promise<{ record: IndexRecord; problem: string | null } | null> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(INDEX_RECORD_SIZE);
    const { bytesRead } = await handle.read(buf, 0, INDEX_RECORD_SIZE, i * INDEX_RECORD_SIZE);
    return bytesRead === INDEX_RECORD_SIZE ? { record: decodeIndexRecord(buf), problem: recordProblem(buf, i) } : null;
  } finally {
    await handle.close();
  }
}

/** The number of whole records in the index (a torn last one not counted); 0 when there is no index yet. */
export async function countRecords(file: string): Promise<number> {
  const size = await fs.stat(file).then((st) => st.size, (err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return 0;
    throw err;
  });
  return Math.floor(size / INDEX_RECORD_SIZE);
}

/** The last complete record, or null for an empty index. A torn last record (a crash mid-append) is ignored. */
export async function readLastRecord(file: string): Promise<IndexRecord | null> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  try {
    const { size } = await handle.stat();
    const whole = Math.floor(size / INDEX_RECORD_SIZE);
    if (whole === 0) return null;
    const buf = Buffer.alloc(INDEX_RECORD_SIZE);
    await handle.read(buf, 0, INDEX_RECORD_SIZE, (whole - 1) * INDEX_RECORD_SIZE);
    return decodeIndexRecord(buf);
  } finally {
    await handle.close();
  }
}

/** Reads record number `i` (frame i); null past the end. Used by rewind and by resume checks. */
export async function readRecord(file: string, i: number): Promise<IndexRecord | null> {
  const handle = await fs.open(file, 'r');
  try {
    const buf = Buffer.alloc(INDEX_RECORD_SIZE);
    const { bytesRead } = await handle.read(buf, 0, INDEX_RECORD_SIZE, i * INDEX_RECORD_SIZE);
    return bytesRead === INDEX_RECORD_SIZE ? decodeIndexRecord(buf) : null;
  } finally {
    await handle.close();
  }
}

/**
 * Cuts a torn tail record off the index so the next append lands on a record boundary; returns its whole records (0
 * when there is no index yet), as countRecords would after it.
 */
export async function trimIndex(file: string): Promise<number> {
  try {
    const { size } = await fs.stat(file);
    const whole = Math.floor(size / INDEX_RECORD_SIZE) * INDEX_RECORD_SIZE;
    if (whole !== size) await fs.truncate(file, whole);
    return whole / INDEX_RECORD_SIZE;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    return 0;
  }
}

/** Records from..from+limit-1 (fewer at the end). */
export async function readRecords(file: string, from: number, limit: number): Promise<IndexRecord[]> {
  // An upload that has had no verified frame yet has no index file: no records, not an error.
  const handle = await fs.open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') return null;
    throw err;
  });
  if (handle === null) return [];
  try {
    const buf = Buffer.alloc(limit * INDEX_RECORD_SIZE);
    const { bytesRead } = await handle.read(buf, 0, buf.length, from * INDEX_RECORD_SIZE);
    const out: IndexRecord[] = [];
    for (let at = 0; at + INDEX_RECORD_SIZE <= bytesRead; at += INDEX_RECORD_SIZE) {
      out.push(decodeIndexRecord(buf.subarray(at, at + INDEX_RECORD_SIZE)));
    }
    return out;
  } finally {
    await handle.close();
  }
}

/** Keeps the first `records` records. */
export async function truncateIndex(file: string, records: number): Promise<void> {
  await fs.truncate(file, records * INDEX_RECORD_SIZE);
}
