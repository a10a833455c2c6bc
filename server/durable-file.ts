/**
 * The server's state files (the catalog, the tokens, a receive's folder record) are replaced whole or not at all:
 * written to a temporary file, synced, renamed over the old one, and the folder synced, so that after a power cut
 * the file is the old one or the new one, never a part of either.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** Replaces `file` with `text`, mode 0600, durably; `tmp` is where it is written first (in the same folder). */
export async function writeFileDurably(file: string, text: string, tmp = `${file}.tmp`): Promise<void> {
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      // open()'s mode is filtered by the umask and ignored for a file left over by a crash: set it for sure.
      await handle.chmod(0o600);
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await fs.rename(tmp, file);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await syncFolder(path.dirname(file));
}

/** Makes a rename or removal in `dir` durable. */
export async function syncFolder(dir: string): Promise<void> {
  const handle = await fs.open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
