// Reads and hashes a range of one file, piece by piece (PIECE_SIZE in record-digest.ts). Plain JavaScript, because
// it runs on the hashing workers, which load no TypeScript (see hash-pool.ts). Holes read as zeros, as read() gives.
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { createHash } from 'node:crypto';

export const PIECE_SIZE = 1024 * 1024;

/** Thrown when the file is not the one the walk saw (another inode, another size): the tree is changing. */
export class ChangedWhileReading extends Error {}

/**
 * The SHA-256 of each piece of [offset, offset + length) of the file at `path` (bytes), concatenated. `offset` is a
 * multiple of PIECE_SIZE. The file must still be inode `ino` of `size` bytes (decimal strings).
 */
export function hashPieces(path, ino, size, offset, length, buffer) {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd, { bigint: true });
    if (String(st.ino) !== ino || String(st.size) !== size || !st.isFile()) {
      throw new ChangedWhileReading(`${Buffer.from(path).toString()} changed while it was read`);
    }
    const digests = Buffer.allocUnsafe(Math.ceil(length / PIECE_SIZE) * 32);
    let done = 0;
    for (let piece = 0; done < length; piece++) {
      const want = Math.min(PIECE_SIZE, length - done);
      let got = 0;
      while (got < want) {
        const n = readSync(fd, buffer, got, want - got, offset + done + got);
        if (n === 0) throw new ChangedWhileReading(`${Buffer.from(path).toString()} ended early while it was read`);
        got += n;
      }
      createHash('sha256').update(buffer.subarray(0, want)).digest().copy(digests, piece * 32);
      done += want;
    }
    return digests;
  } finally {
    closeSync(fd);
  }
}
