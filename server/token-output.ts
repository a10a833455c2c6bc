/**
 * Where `snapferry client add` puts the new token: it is shown once and stored nowhere else, so wherever it goes
 * must not be readable by others. `> laptop.token` makes a 0644 file under the usual umask 022, and nothing else
 * would say so: such a stdout is refused before any client is added. `--token-file FILE` writes a new file 0600.
 */
import fs from 'node:fs';
import { ValidationError } from '../core/errors.ts';

/** Refuses a stdout that is a regular file that group or others may read (or write); a terminal or a pipe is fine. */
export function checkTokenStdout(fd = 1): void {
  let st: fs.Stats;
  try {
    st = fs.fstatSync(fd);
  } catch {
    return;
  }
  if (!st.isFile() || (st.mode & 0o077) === 0) return;
  const mode = (st.mode & 0o777).toString(8).padStart(4, '0');
  throw new ValidationError(
    `stdout is a file that others can read (mode ${mode}), and the token would be written there: use --token-file FILE ` +
      '(written with mode 0600), or `umask 077` before redirecting, or chmod 600 the file first; no client was added',
    { details: { mode } },
  );
}

/** A new file for the token, mode 0600; refused when it exists (it may hold another client's token). */
export function openTokenFile(file: string): number {
  try {
    return fs.openSync(file, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ValidationError(
      code === 'EEXIST' ? `--token-file ${file} exists: give a new file (it is written with mode 0600, never over another)` : `cannot create --token-file ${file}: ${(err as Error).message}`,
      { cause: err, details: { file } },
    );
  }
}
