/**
 * Files that hold a secret (a client's token, an encryption key): read whole, with the mode of the very file read,
 * since a stat and then a read could look at two files. Whoever can read such a file holds the secret, so one that
 * group or others may read or write is refused by each caller, with its own error and the chmod that fixes it.
 */
import fs from 'node:fs/promises';

export interface PrivateFile {
  text: string;
  /** st_mode of the file read. */
  mode: number;
}

/** Reads `file`; rejects with the fs error. */
export async function readPrivateFile(file: string): Promise<PrivateFile> {
  const handle = await fs.open(file, 'r');
  try {
    const { mode } = await handle.stat();
    return { mode, text: await handle.readFile('utf8') };
  } finally {
    await handle.close();
  }
}

/** The permission bits as `ls` and `chmod` write them (e.g. "644") when group or others have any, else null. */
export function openToOthers(mode: number): string | null {
  return (mode & 0o077) === 0 ? null : (mode & 0o777).toString(8);
}
