/** Filling a test server's filesystem for real, as a full backup disk is. */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';

/** Writes random data to `file` until the filesystem says it is full; returns the bytes written. */
export async function fillUntilFull(file: string): Promise<number> {
  const handle = await fs.open(file, 'w');
  let written = 0;
  try {
    for (;;) {
      await handle.write(crypto.randomBytes(1024 * 1024));
      written += 1024 * 1024;
      await handle.sync();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    await handle.close().catch(() => undefined);
  }
  return written;
}
