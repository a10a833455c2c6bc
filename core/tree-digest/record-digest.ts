/**
 * The digests of the tree, defined once for both sides (a change here changes every digest: bump the version tag).
 *
 * - content: SHA-256 over the tag, the size in decimal, and the SHA-256 of each PIECE_SIZE piece of the file in
 *   order (the last one short; an empty file has none). Pieces let one large file be hashed on every core.
 * - xattrs: SHA-256 over the tag and each (name, value) sorted bytewise by name, each length-prefixed (u32 BE).
 * - entry: SHA-256 over the tag, the record as a JSON array in a fixed field order, and for a directory one JSON
 *   line [name, kind, digest] per child, in bytewise order of the names' bytes.
 */
import { createHash } from 'node:crypto';
import type { ChildDigest, DifferenceKind, EntryRecord } from './types.ts';

export const PIECE_SIZE = 1024 * 1024;
const CONTENT_TAG = 'snapferry-content-v1\n';
const XATTRS_TAG = 'snapferry-xattrs-v1\n';
const ENTRY_TAG = 'snapferry-entry-v1\n';

/** The content digest from the piece digests (32 bytes each, in order). */
export function contentDigest(size: bigint, pieceDigests: Uint8Array): string {
  const pieces = size === 0n ? 0n : (size + BigInt(PIECE_SIZE) - 1n) / BigInt(PIECE_SIZE);
  if (BigInt(pieceDigests.length) !== pieces * 32n) {
    throw new RangeError(`a file of ${size} bytes has ${pieces} pieces, got ${pieceDigests.length / 32} digests`);
  }
  return createHash('sha256').update(CONTENT_TAG).update(`${size}\n`).update(pieceDigests).digest('hex');
}

/** The xattrs digest, or null when there are none. */
export function xattrsDigest(xattrs: ReadonlyArray<readonly [name: Uint8Array, value: Uint8Array]>): string | null {
  if (xattrs.length === 0) return null;
  const sorted = [...xattrs].sort(([a], [b]) => Buffer.compare(a, b));
  const h = createHash('sha256').update(XATTRS_TAG);
  const length = Buffer.alloc(4);
  for (const [name, value] of sorted) {
    length.writeUInt32BE(name.length);
    h.update(length).update(name);
    length.writeUInt32BE(value.length);
    h.update(length).update(value);
  }
  return h.digest('hex');
}

/** The record's fields in the one order that is hashed. */
function recordFields(r: EntryRecord): unknown[] {
  return [r.kind, r.mode, r.uid, r.gid, r.size, r.mtime, r.rdev, r.target, r.xattrs, r.content, r.link];
}

/** An entry's digest: its record, and for a directory its children (in tree order) with their digests. */
export function entryDigest(record: EntryRecord, children: Iterable<ChildDigest> = []): string {
  const h = createHash('sha256').update(ENTRY_TAG).update(JSON.stringify(recordFields(record)) + '\n');
  for (const child of children) h.update(JSON.stringify([child.name, child.kind, child.digest]) + '\n');
  return h.digest('hex');
}

/** What differs between two records of one path, in DIFFERENCE_KINDS order; empty when they are equal. */
export function recordDifferences(a: EntryRecord, b: EntryRecord): DifferenceKind[] {
  if (a.kind !== b.kind) return ['kind'];
  const differs: DifferenceKind[] = [];
  if (a.content !== b.content) differs.push('content');
  if (a.size !== b.size) differs.push('size');
  if (a.mode !== b.mode) differs.push('mode');
  if (a.uid !== b.uid || a.gid !== b.gid) differs.push('owner');
  if (a.mtime !== b.mtime) differs.push('mtime');
  if (a.xattrs !== b.xattrs) differs.push('xattrs');
  if (a.target !== b.target) differs.push('target');
  if (a.rdev !== b.rdev) differs.push('rdev');
  if (a.link !== b.link) differs.push('link');
  return differs;
}

/** "SECONDS.NANOSECONDS" from nanoseconds since the epoch (negative times keep a non-negative fraction). */
export function formatMtime(ns: bigint): string {
  const billion = 1_000_000_000n;
  let seconds = ns / billion;
  let fraction = ns % billion;
  if (fraction < 0n) {
    fraction += billion;
    seconds -= 1n;
  }
  return `${seconds}.${fraction.toString().padStart(9, '0')}`;
}
