/**
 * The tokens file: which bearer tokens the server accepts and whom each one names. Only SHA-256 hashes are stored,
 * so a copy of the file (a backup, a leaked config) lets nobody in; the plain token is printed once, when the client
 * is added. The file is JSON, replaced atomically (write, fsync, rename, fsync the folder) and kept at mode 0600.
 *
 * A `client` token owns one namespace of volumes, snapshots and transfers (its name is the folder under
 * ROOT/volumes/); an `admin` token reads every client's and writes nothing.
 */
import crypto from 'node:crypto';
import fs from 'node:fs/promises';
import { writeFileDurably } from '../core/durable-file.ts';
import path from 'node:path';
import { z } from 'zod';
import { SnapferryError } from '../core/errors.ts';
import { parseName, type SafeName } from '../core/names.ts';

export const roles = ['client', 'admin'] as const;
export type Role = (typeof roles)[number];

const TokenEntry = z.object({
  name: z.string(),
  role: z.enum(roles),
  /** Hex SHA-256 of the token's UTF-8 text. */
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a 64-digit lowercase hex SHA-256'),
  createdAt: z.string(),
});
export type TokenEntry = z.infer<typeof TokenEntry> & { name: SafeName };

const TokensFile = z.object({ version: z.literal(1), clients: z.array(TokenEntry) });

export class TokensError extends SnapferryError {}

/** 32 random bytes, base64url: 43 characters that need no quoting in a header, a file or an env variable. */
export function newToken(): string {
  return crypto.randomBytes(32).toString('base64url');
}

export function hashToken(token: string): string {
  return crypto.createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Reads and validates the file; a file that does not exist is an error that says how to create one. */
export async function readTokens(file: string): Promise<TokenEntry[]> {
  let text: string;
  try {
    text = await fs.readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new TokensError('tokens_file_missing', `the tokens file ${file} does not exist; create it with \`snapferry client add NAME --tokens ${file}\``, {
        details: { file },
      });
    }
    throw new TokensError('tokens_file_unreadable', `cannot read the tokens file ${file}: ${(err as Error).message}`, { cause: err, details: { file } });
  }
  return parseTokens(text, file);
}

export function parseTokens(text: string, file: string): TokenEntry[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  const parsed = TokensFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue && issue.path.length > 0 ? ` at ${issue.path.join('.')}` : '';
    throw new TokensError('tokens_file_invalid', `the tokens file ${file} is not valid${where}: ${issue?.message ?? 'not JSON'}; fix it or restore it from a backup`, {
      details: { file },
    });
  }
  const seen = new Set<string>();
  // A token is looked up by its hash, and the first entry that holds it wins: one hash under two names would let an
  // entry added before a client's take its token over, with that entry's role (an admin).
  const hashes = new Map<string, string>();
  for (const entry of parsed.data.clients) {
    parseName(entry.name, `client name in ${file}`);
    if (seen.has(entry.name)) {
      throw new TokensError('tokens_file_invalid', `the tokens file ${file} names ${entry.name} twice; remove one entry`, { details: { file } });
    }
    seen.add(entry.name);
    const other = hashes.get(entry.sha256);
    if (other !== undefined) {
      throw new TokensError('tokens_file_invalid', `the tokens file ${file} gives ${other} and ${entry.name} the same token (sha256); remove the entry that should not have it`, {
        details: { file, names: [other, entry.name] },
      });
    }
    hashes.set(entry.sha256, entry.name);
  }
  return parsed.data.clients as TokenEntry[];
}

/** Adds a client (or an admin) and returns its token: the only time the plain token exists. */
export async function addClient(file: string, name: string, role: Role = 'client'): Promise<{ entry: TokenEntry; token: string }> {
  const safe = parseName(name, 'client name');
  // The first client of a new server: its folder (e.g. /etc/snapferry) may not exist yet, and the lock lives in it.
  await fs.mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
  return withLock(file, async () => {
    const entries = await readTokens(file).catch((err: unknown) => {
      if (err instanceof TokensError && err.code === 'tokens_file_missing') return [];
      throw err;
    });
    if (entries.some((e) => e.name === safe)) {
      throw new TokensError('client_exists', `${file} already has a client named ${safe}; pick another name, or \`snapferry client remove ${safe} --tokens ${file}\` first to replace its token`, {
        details: { file, name: safe },
      });
    }
    const token = newToken();
    const entry: TokenEntry = { name: safe, role, sha256: hashToken(token), createdAt: new Date().toISOString() };
    await writeTokens(file, [...entries, entry]);
    return { entry, token };
  });
}

/** Removes a client's token; the running server refuses it from its next request on. Its data stays on disk. */
export async function removeClient(file: string, name: string): Promise<TokenEntry> {
  const safe = parseName(name, 'client name');
  return withLock(file, async () => {
    const entries = await readTokens(file);
    const entry = entries.find((e) => e.name === safe);
    if (!entry) {
      throw new TokensError('client_not_found', `${file} has no client named ${safe}; \`snapferry client list --tokens ${file}\` shows who is there`, {
        details: { file, name: safe },
      });
    }
    await writeTokens(file, entries.filter((e) => e !== entry));
    return entry;
  });
}

export async function writeTokens(file: string, entries: readonly TokenEntry[]): Promise<void> {
  const tmp = path.join(path.dirname(file), `.${path.basename(file)}.${process.pid}.tmp`);
  await writeFileDurably(file, `${JSON.stringify({ version: 1, clients: entries }, null, 1)}\n`, tmp);
}

/**
 * Two `client add` at once must not both read the old file and drop one another's client. A lock file made with
 * O_EXCL is enough for a command people run by hand; one left by a killed command is named in the error.
 */
async function withLock<T>(file: string, fn: () => Promise<T>): Promise<T> {
  const lock = `${file}.lock`;
  let handle: fs.FileHandle | undefined;
  for (let attempt = 0; !handle; attempt++) {
    try {
      handle = await fs.open(lock, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      if (attempt >= 50) {
        throw new TokensError('tokens_file_locked', `${lock} exists: another snapferry client command is changing ${file}; if none runs, delete ${lock}`, {
          retryable: true,
          details: { file, lock },
        });
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  try {
    await handle.close();
    return await fn();
  } finally {
    await fs.rm(lock, { force: true });
  }
}
