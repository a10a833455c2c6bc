/**
 * A DigestedTree saved to a file and loaded again, so that the next digest can reuse it (and the server can answer
 * for a snapshot without reading it again). The file is gzip'd JSON lines:
 *
 *   {"format":"snapferry-tree-digest","version":1,"entries":N,"digest":"<hex of the top>"}
 *   [parent, name, kind, mode, uid, gid, size, mtimeNs, ctimeNs, ino, rdev, target, xattrs, content, link]   x N
 *
 * in walk order (index 0 is the top; parent and link are indices; size, times and ino are decimal strings). Entry
 * digests are not stored: loading recomputes them, and a file whose top digest then differs is refused. Writing is
 * atomic (a temporary file beside it, fsync, rename, fsync of the directory): a crash leaves the old file or the new.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { StringDecoder } from 'node:string_decoder';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { randomBytes } from 'node:crypto';
import { DigestedTree } from './digested-tree.ts';
import { EntryTable, NO_ENTRY } from './entry-table.ts';
import { DigestFileError } from './errors.ts';
import { ENTRY_KINDS } from './types.ts';
import type { EntryKind } from './types.ts';

const FORMAT = 'snapferry-tree-digest';
const VERSION = 1;

export async function saveTree(tree: DigestedTree, file: string): Promise<void> {
  const temporary = path.join(path.dirname(file), `.${path.basename(file)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    await pipeline(Readable.from(lines(tree)), createGzip({ level: 6 }), createWriteStream(temporary));
    const handle = await open(temporary, 'r');
    await handle.sync().finally(() => handle.close());
    await rename(temporary, file);
  } catch (err) {
    await rm(temporary, { force: true });
    throw err;
  }
  const dir = await open(path.dirname(file), 'r');
  await dir.sync().finally(() => dir.close());
}

function* lines(tree: DigestedTree): Generator<string> {
  const t = tree.table;
  yield JSON.stringify({ format: FORMAT, version: VERSION, entries: t.count, digest: tree.digest }) + '\n';
  for (let i = 0; i < t.count; i++) {
    const row = [
      t.parent[i],
      t.names[i],
      t.kindOf(i),
      t.mode[i],
      t.uid[i],
      t.gid[i],
      String(t.size[i]),
      String(t.mtimeNs[i]),
      String(t.ctimeNs[i]),
      String(t.ino[i]),
      t.rdev.get(i) ?? null,
      t.target.get(i) ?? null,
      t.xattrs.get(i) ?? null,
      t.contentOf(i),
      t.link.get(i) ?? null,
    ];
    yield JSON.stringify(row) + '\n';
  }
}

export async function loadTree(file: string): Promise<DigestedTree> {
  const table = new EntryTable();
  // In an object: assigned inside onLine, which TypeScript's narrowing of a plain `let` does not follow.
  const read: { header: { entries: number; digest: string } | null } = { header: null };
  const fail = (why: string): never => {
    throw new DigestFileError(`${file} is not a usable tree digest (${why})`);
  };
  const onLine = (line: string): void => {
    if (line.length === 0) return;
    if (read.header === null) {
      const h = JSON.parse(line) as Record<string, unknown>;
      if (h.format !== FORMAT || h.version !== VERSION) fail(`format ${String(h.format)} version ${String(h.version)}`);
      if (!Number.isInteger(h.entries) || typeof h.digest !== 'string') fail('bad header');
      read.header = { entries: h.entries as number, digest: h.digest as string };
      return;
    }
    addRow(table, JSON.parse(line) as unknown, fail);
  };
  // The file's own errors (missing, unreadable) reach the loop through the gunzip stream: pipe() alone would leave
  // them as an 'error' event no one listens to, which ends the process.
  const source = createReadStream(file);
  const gunzip = createGunzip();
  source.on('error', (err) => gunzip.destroy(err));
  source.pipe(gunzip);
  try {
    let rest = '';
    // A name's UTF-8 can be cut between two chunks: the decoder holds the cut bytes back.
    const decoder = new StringDecoder('utf8');
    for await (const chunk of gunzip as AsyncIterable<Buffer>) {
      const lines = (rest + decoder.write(chunk)).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) onLine(line);
    }
    onLine(rest + decoder.end());
  } catch (err) {
    if (err instanceof DigestFileError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // Missing or unreadable: the caller's to handle (a missing digest is computed from the disk), not damage.
    if (code === 'ENOENT' || code === 'EACCES' || code === 'EISDIR') throw err;
    throw new DigestFileError(`${file} could not be read as a tree digest: ${(err as Error).message}`, { cause: err });
  } finally {
    source.destroy();
  }
  if (read.header === null) return fail('empty');
  const header = read.header;
  if (table.count !== header.entries) fail(`${table.count} entries, the header says ${header.entries}`);
  let tree: DigestedTree;
  try {
    tree = new DigestedTree(table);
  } catch (err) {
    return fail((err as Error).message);
  }
  if (tree.digest !== header.digest) fail('its entries do not add up to its digest');
  return tree;
}

function addRow(table: EntryTable, row: unknown, fail: (why: string) => never): void {
  const i = table.count;
  if (!Array.isArray(row) || row.length !== 15) fail(`entry ${i} is not a row of 15`);
  const [parent, name, kind, mode, uid, gid, size, mtimeNs, ctimeNs, ino, rdev, target, xattrs, content, link] = row as unknown[];
  const isHex = (v: unknown): boolean => typeof v === 'string' && /^[0-9a-f]{64}$/.test(v);
  const okParent = i === 0 ? parent === NO_ENTRY : Number.isInteger(parent) && (parent as number) >= 0 && (parent as number) < i;
  if (!okParent || typeof name !== 'string' || !ENTRY_KINDS.includes(kind as EntryKind)) fail(`entry ${i} is malformed`);
  if (i > 0 && ((name as string) === '' || (name as string).includes('/'))) fail(`entry ${i} has no name or a '/' in it`);
  if (i > 0 && table.kindOf(parent as number) !== 'dir') fail(`entry ${i}'s parent is not a directory`);
  for (const n of [mode, uid, gid]) if (!Number.isInteger(n) || (n as number) < 0) fail(`entry ${i} has a bad number`);
  for (const n of [size, mtimeNs, ctimeNs, ino]) if (typeof n !== 'string' || !/^-?\d+$/.test(n)) fail(`entry ${i} has a bad number`);
  if (xattrs !== null && !isHex(xattrs)) fail(`entry ${i} has a bad xattrs digest`);
  if ((kind === 'file') !== isHex(content) || (kind !== 'file' && content !== null)) fail(`entry ${i} has a bad content digest`);
  if (link !== null && !(Number.isInteger(link) && (link as number) >= 0 && (link as number) <= i)) fail(`entry ${i} has a bad link`);
  table.add({
    parent: parent as number,
    name: name as string,
    kind: kind as EntryKind,
    mode: mode as number,
    uid: uid as number,
    gid: gid as number,
    size: BigInt(size as string),
    mtimeNs: BigInt(mtimeNs as string),
    ctimeNs: BigInt(ctimeNs as string),
    ino: BigInt(ino as string),
    rdev: typeof rdev === 'string' ? rdev : null,
    target: typeof target === 'string' ? target : null,
  });
  if (typeof xattrs === 'string') table.xattrs.set(i, xattrs);
  if (typeof content === 'string') table.setContent(i, content);
  if (typeof link === 'number') table.link.set(i, link);
}
