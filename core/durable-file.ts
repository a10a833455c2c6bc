/**
 * State files (the server's catalog, tokens and receive folder records; a restore spool's identity on the client)
 * are replaced whole or not at all: written to a temporary file, synced, renamed over the old one, and the folder
 * synced, so that after a power cut the file is the old one or the new one, never a part of either. Reading one back
 * is as strict: a file that is missing, torn or of another shape reads as absent, and its owner starts over.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import type { z } from 'zod';

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

/** The JSON in `file` parsed by `schema`; null when the file is missing, not JSON, or not of that shape. */
export async function readJsonFile<T>(file: string, schema: z.ZodType<T>): Promise<T | null> {
  const text = await fs.readFile(file, 'utf8').catch(() => null);
  if (text === null) return null;
  try {
    const parsed = schema.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : null;
  } catch {
    return null;
  }
}
