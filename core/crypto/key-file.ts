/**
 * The key file: the one secret client-side sealing needs, held by clients only (`encrypt: PATH` in the client's
 * config; `snapferry key generate PATH` makes one). Text, so that it can be printed, checked by eye and kept on paper:
 *
 *   # snapferry sealing key. Without it nothing sealed under it can be restored: keep a copy apart from the backups.
 *   snapferry-key 1
 *   id 0123456789abcdef
 *   secret <32 bytes, base64url>
 *
 * `1` is the format's version; a later snapferry may write another, and this one refuses it by name. The id is
 * derived from the secret (keys.ts), so an id that does not match its secret is a damaged file, told apart from a
 * wrong key; sealed frames carry the id, so a restore with another key says so before it tries to open anything.
 *
 * Like ssh with its private keys, a key file that others can read is refused: it would not stay the only copy.
 */
import { randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { KeyFileError } from './errors.ts';
import { deriveKeys, SECRET_SIZE, type SealKey } from './keys.ts';
import { syncFolder } from '../durable-file.ts';
import { openToOthers, readPrivateFile } from '../private-file.ts';
import path from 'node:path';

export const KEY_FILE_VERSION = 1;
const HEADER = 'snapferry-key';
const COMMENT = '# snapferry sealing key. Without it nothing sealed under it can be restored: keep a copy apart from the backups.';

/** The file's text for `secret`. */
export function formatKeyFile(secret: Uint8Array): string {
  const { id } = deriveKeys(secret);
  return `${COMMENT}\n${HEADER} ${KEY_FILE_VERSION}\nid ${id.toString('hex')}\nsecret ${Buffer.from(secret).toString('base64url')}\n`;
}

/** The key in `text`, or KeyFileError('key_file_invalid') naming what is wrong (never the secret). */
export function parseKeyFile(text: string, file: string): SealKey {
  const invalid = (why: string): never => {
    throw new KeyFileError('key_file_invalid', `${file}: ${why}`, { path: file });
  };
  const lines = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const [magic, version] = (lines[0] ?? '').split(/\s+/);
  if (magic !== HEADER) invalid(`not a snapferry key file (its first line is not "${HEADER} ${KEY_FILE_VERSION}")`);
  if (version !== String(KEY_FILE_VERSION)) {
    invalid(`key file version ${version ?? '(none)'}; this snapferry reads version ${KEY_FILE_VERSION}: use the snapferry that wrote it, or a newer one`);
  }
  const fields = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const m = /^([a-z]+) (\S+)$/.exec(line);
    if (m === null) invalid(`a line is not "name value"`);
    if (fields.has(m![1]!)) invalid(`"${m![1]}" appears twice`);
    fields.set(m![1]!, m![2]!);
  }
  for (const name of fields.keys()) if (name !== 'id' && name !== 'secret') invalid(`unknown field "${name}"`);
  const id = fields.get('id') ?? invalid('no "id" line');
  const encoded = fields.get('secret') ?? invalid('no "secret" line');
  const secret = Buffer.from(encoded, 'base64url');
  if (secret.length !== SECRET_SIZE || secret.toString('base64url') !== encoded) invalid(`the secret is not ${SECRET_SIZE} bytes of base64url: the file is damaged`);
  const key = deriveKeys(secret);
  if (key.id.toString('hex') !== id) invalid(`the secret does not belong to id ${id}: the file is damaged (restore it from your copy)`);
  return key;
}

/** Reads and parses the key file at `file`; refuses one that group or others can read or write. */
export async function readKeyFile(file: string): Promise<SealKey> {
  const { text, mode } = await readPrivateFile(file).catch((err: unknown) => {
    throw new KeyFileError('key_file_unreadable', `cannot read the key file ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, { path: file, cause: err });
  });
  const shown = openToOthers(mode);
  if (shown !== null) throw new KeyFileError('key_file_invalid', `${file} is open to others (mode ${shown}): chmod 600 ${file}`, { path: file });
  return parseKeyFile(text, file);
}

/** Why `file` could not be made, with what to do where the cause is a common one. */
function whyNotCreated(file: string, err: NodeJS.ErrnoException): string {
  const folder = path.dirname(path.resolve(file));
  if (err.code === 'ENOENT') return `its folder ${folder} does not exist (ENOENT): create it first (mkdir -p ${folder}), or choose another path`;
  if (err.code === 'EACCES') return `this user may not write in ${folder} (EACCES): choose another path, or run it as a user who may`;
  return err.code ?? String(err);
}

/**
 * Writes a new key file at `file`, mode 0600, durably, and returns its key. Never replaces a file: data sealed under
 * the old key would be lost with it. `secret` is for tests; a key is random otherwise.
 */
export async function generateKeyFile(file: string, secret: Uint8Array = randomBytes(SECRET_SIZE)): Promise<SealKey> {
  let handle: fs.FileHandle;
  try {
    // 'wx': O_CREAT | O_EXCL, so an existing file (or a symlink planted at the name) fails instead of being written.
    handle = await fs.open(file, 'wx', 0o600);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new KeyFileError('key_file_exists', `${file} exists; a key file is never replaced (what was sealed under it needs it): choose another path`, {
        path: file,
        cause: err,
      });
    }
    throw new KeyFileError('key_file_unreadable', `cannot create the key file ${file}: ${whyNotCreated(file, err as NodeJS.ErrnoException)}`, { path: file, cause: err });
  }
  try {
    // The file is new (O_EXCL), so its mode is 0600 less the umask's bits: never more open than 0600.
    await handle.writeFile(formatKeyFile(secret));
    await handle.sync();
  } catch (err) {
    await handle.close();
    await fs.rm(file, { force: true });
    throw err;
  }
  await handle.close();
  await syncFolder(path.dirname(file));
  return deriveKeys(secret);
}
