/**
 * Bulk mixed data for the benchmark, written fast: compressible text (log-like lines from a vocabulary),
 * incompressible bytes, and many small files, around a small fillVaried tree so that the stream also carries every
 * kind of send command. The same seed builds the same names, sizes and text; the incompressible bytes come from
 * /dev/urandom, the fastest source on a small VM (350 MB/s where Node's AES-CTR makes 45 MB/s), so they differ
 * run to run, and how they compress (not at all) does not. mutateMixed() then changes a few percent, for an
 * incremental.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fillVaried, mutate } from '../fixtures/btrfs.ts';
import { prng, type Prng } from '../fixtures/prng.ts';

export interface MixedSummary {
  files: number;
  /** Bytes of file data written. */
  bytes: number;
}

const KiB = 1024;
const MiB = 1024 * 1024;
/** Big files are written in pieces of this size: a piece is the most any generator holds in memory. */
const PIECE = 8 * MiB;

/**
 * Fills `dir` with about `sizeMiB` MiB of file data: 40% text, 45% random, 12% small files (0-12 KiB, 60 or so
 * per directory), the rest a fillVaried tree under varied/ (xattrs, links, holes, owners, special files).
 */
export async function fillMixed(dir: string, options: { seed: string; sizeMiB: number }): Promise<MixedSummary> {
  const r = prng(`bench-${options.seed}`);
  const budget = options.sizeMiB * MiB;
  const summary: MixedSummary = { files: 0, bytes: 0 };
  const count = (bytes: number): void => {
    summary.files += 1;
    summary.bytes += bytes;
  };

  const varied = await fillVaried(path.join(dir, 'varied'), { seed: options.seed, sizeMB: Math.max(1, Math.round(options.sizeMiB * 0.03)) });
  summary.files += varied.files;
  summary.bytes += varied.bytes;

  const text = textSource(r);
  for (const [i, size] of sizes(r, budget * 0.4, 64 * KiB, 16 * MiB).entries()) {
    await writePieces(path.join(dir, 'text', `log-${pad(i)}.txt`), size, (n) => text(n));
    count(size);
  }
  for (const [i, size] of sizes(r, budget * 0.45, 256 * KiB, 64 * MiB).entries()) {
    await writePieces(path.join(dir, 'random', `blob-${pad(i)}.bin`), size, (n) => urandom(n));
    count(size);
  }
  await writeSmallFiles(path.join(dir, 'small'), r, text, budget * 0.12, count);
  return summary;
}

/**
 * Changes a filled tree the way a day of use does, about 7% of its size: the fixtures' mutate() on varied/
 * (every kind of change an incremental must carry), text appended to, random files overwritten in the middle,
 * some deleted, new random and small files, a small-file directory renamed.
 */
export async function mutateMixed(dir: string, options: { seed: string; sizeMiB: number }): Promise<string[]> {
  const r = prng(`bench-mutate-${options.seed}`);
  const text = textSource(r);
  const budget = options.sizeMiB * MiB;
  const done = await mutate(path.join(dir, 'varied'), options.seed);

  const appendBytes = Math.floor(budget * 0.01);
  const texts = (await readdir(path.join(dir, 'text'))).sort().slice(0, 8);
  for (const name of texts) {
    const handle = await open(path.join(dir, 'text', name), 'a');
    await handle.write(text(Math.floor(appendBytes / texts.length)));
    await handle.close();
  }
  done.push(`appended ${appendBytes} bytes of text to ${texts.length} files`);

  // The first random files are overwritten in the middle, the next few deleted (as many as there are, up to 6 and 3).
  const randoms = (await readdir(path.join(dir, 'random'))).sort();
  const overwritten = randoms.slice(0, Math.min(6, Math.ceil(randoms.length / 2)));
  for (const name of overwritten) {
    const handle = await open(path.join(dir, 'random', name), 'r+');
    const { size } = await handle.stat();
    const length = Math.min(size, MiB);
    await handle.write(await urandom(length), 0, length, Math.floor((size - length) / 2));
    await handle.close();
  }
  done.push(`overwrote up to 1 MiB in the middle of ${overwritten.length} random files`);
  const deleted = randoms.slice(overwritten.length, overwritten.length + 3);
  for (const name of deleted) await rm(path.join(dir, 'random', name));
  done.push(`deleted ${deleted.length} random files`);

  const fresh = sizes(r, budget * 0.04, 256 * KiB, 16 * MiB);
  for (const [i, size] of fresh.entries()) {
    await writePieces(path.join(dir, 'random-new', `new-${pad(i)}.bin`), size, (n) => urandom(n));
  }
  done.push(`added ${fresh.length} random files (${Math.round(budget * 0.04)} bytes)`);
  await writeSmallFiles(path.join(dir, 'small-new'), r, text, budget * 0.005, () => undefined);
  await rename(path.join(dir, 'small', 'd000'), path.join(dir, 'small', 'd000-renamed'));
  done.push('added small files under small-new/, renamed small/d000');
  return done;
}

/**
 * Log-like text of any length: runs of 16 lines copied from a 32 MiB pool of lines made of words from a
 * 1000-word vocabulary, each run after a line number. Copying runs is fast (one copy per KB); a pool far larger than
 * zstd's windows (2 MiB at -3, 8 MiB at -19) keeps text from repeating within reach, as real text mostly does not:
 * a small pool would let the high levels find every line again and look far better than they are.
 */
function textSource(r: Prng): (size: number) => Buffer {
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  const words = Array.from({ length: 1000 }, () => Array.from({ length: r.int(2, 10) }, () => letters[r.int(0, 25)]).join(''));
  const pool = Buffer.allocUnsafe(32 * MiB);
  const starts: number[] = [];
  for (let at = 0; at < pool.length - 256; ) {
    starts.push(at);
    for (let n = r.int(4, 14); n > 0; n--) at += pool.write(` ${words[(r.next() * words.length) | 0]}`, at, 'latin1');
    pool[at++] = 0x0a;
  }
  const RUN = 16;
  let line = 0;
  return (size) => {
    const out = Buffer.allocUnsafe(size + 64 * KiB);
    let at = 0;
    while (at < size) {
      const first = (r.next() * (starts.length - RUN)) | 0;
      at += out.write(String(line), at, 'latin1');
      line += RUN;
      at += pool.copy(out, at, starts[first], starts[first + RUN]);
    }
    return out.subarray(0, size);
  };
}

/**
 * File sizes between `min` and `max` adding up to about `total`, log-uniform (many small, some large); never more
 * than a quarter of the total each, so that a small run has several files too.
 */
function sizes(r: Prng, total: number, min: number, max: number): number[] {
  const top = Math.max(2 * min, Math.min(max, total / 4));
  const out: number[] = [];
  let left = Math.floor(total);
  while (left > min) {
    const size = Math.min(left, Math.round(min * Math.pow(top / min, r.next())));
    out.push(size);
    left -= size;
  }
  return out;
}

/** `length` bytes from /dev/urandom (crypto.randomBytes for small ones: one syscall, no file to open). */
async function urandom(length: number): Promise<Buffer> {
  if (length <= 64 * KiB) return randomBytes(length);
  const out = Buffer.allocUnsafe(length);
  const handle = await open('/dev/urandom', 'r');
  try {
    for (let at = 0; at < length; ) at += (await handle.read(out, at, length - at)).bytesRead;
  } finally {
    await handle.close();
  }
  return out;
}

async function writePieces(file: string, size: number, make: (length: number) => Buffer | Promise<Buffer>): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true });
  const handle = await open(file, 'w');
  try {
    for (let at = 0; at < size; at += PIECE) await handle.write(await make(Math.min(PIECE, size - at)));
  } finally {
    await handle.close();
  }
}

/** Files of 0-12 KiB, a third of them binary, 60 per directory in two levels, until `total` bytes are written. */
async function writeSmallFiles(dir: string, r: Prng, text: (size: number) => Buffer, total: number, count: (bytes: number) => void): Promise<void> {
  let written = 0;
  for (let i = 0; written < total; i++) {
    const sub = path.join(dir, `d${pad(Math.floor(i / 3600))}`, `e${pad(Math.floor(i / 60) % 60)}`);
    if (i % 60 === 0) await mkdir(sub, { recursive: true });
    const size = r.int(0, 12 * KiB);
    const binary = i % 3 === 0;
    await writeFile(path.join(sub, `f${pad(i % 60)}.${binary ? 'bin' : 'txt'}`), binary ? await urandom(size) : text(size));
    written += size;
    count(size);
  }
}

function pad(i: number): string {
  return String(i).padStart(3, '0');
}
