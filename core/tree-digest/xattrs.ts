/**
 * Every xattr of every entry of a tree, of every namespace (user, trusted, security, system ACLs), from one
 * `getfattr` run streamed line by line (Node has no xattr API, and a native addon would need a compiler).
 *
 * getfattr writes a path or a name with a backslash, newline, '=' (in names) and other odd bytes as backslash +
 * three octal digits, and everything else as raw bytes; the output is read as bytes, never decoded as text first, so
 * names that are not UTF-8 come back exactly. -P walks without following symlinks and -h reads a symlink's own
 * xattrs. getfattr has no --one-file-system: a nested subvolume or mount is listed too, and its paths (which the walk
 * did not take) are dropped by the caller.
 */
import { spawn } from 'node:child_process';
import path from 'node:path';
import { xattrsDigest } from './record-digest.ts';
import { spellBytes } from './spell.ts';
import { TreeReadError } from './errors.ts';

export interface XattrsOfEntry {
  /** The entry's path inside the tree, spelled as types.ts says ('' for the top). */
  path: string;
  /** Hex digest of its xattrs (record-digest.ts). */
  digest: string;
}

/** Calls `onEntry` for each entry that has at least one xattr; resolves when getfattr has exited cleanly. */
export async function readTreeXattrs(
  root: string,
  onEntry: (entry: XattrsOfEntry) => void,
  signal?: AbortSignal,
): Promise<void> {
  const base = Buffer.from(path.resolve(root));
  const args = ['-R', '-P', '-h', '-d', '-m', '-', '-e', 'hex', '--absolute-names', '--', path.resolve(root)];
  const child = spawn('getfattr', args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, LC_ALL: 'C' }, signal });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve(code));
  });
  // Awaited after the output is read; marked handled now, or a getfattr that cannot start (ENOENT) would be an
  // unhandled rejection, which ends the process, while the empty output is being read.
  exited.catch(() => {});

  let current: { path: string; xattrs: Array<[Buffer, Buffer]> } | null = null;
  const finish = (): void => {
    if (current !== null && current.xattrs.length > 0) {
      onEntry({ path: current.path, digest: xattrsDigest(current.xattrs) as string });
    }
    current = null;
  };
  const onLine = (line: Buffer): void => {
    if (line.length === 0) return;
    if (line.subarray(0, 8).toString('latin1') === '# file: ') {
      finish();
      const full = unescapeOctal(line.subarray(8));
      current = { path: relativeSpelled(base, full), xattrs: [] };
      return;
    }
    const eq = line.indexOf(0x3d); // '=': never inside a name, which getfattr escapes as \075
    if (eq < 0 || current === null) throw new TreeReadError(`getfattr wrote a line that is not name=value: ${JSON.stringify(line.toString('latin1'))}`);
    const value = line.subarray(eq + 1).toString('latin1');
    if (!value.startsWith('0x') || !/^0x(?:[0-9a-f]{2})*$/.test(value)) {
      throw new TreeReadError(`getfattr wrote a value that is not -e hex: ${JSON.stringify(value.slice(0, 40))}`);
    }
    current.xattrs.push([unescapeOctal(line.subarray(0, eq)), Buffer.from(value.slice(2), 'hex')]);
  };

  try {
    let rest = Buffer.alloc(0);
    for await (const chunk of child.stdout as AsyncIterable<Buffer>) {
      let data = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
      for (let nl = data.indexOf(0x0a); nl >= 0; nl = data.indexOf(0x0a)) {
        onLine(data.subarray(0, nl));
        data = data.subarray(nl + 1);
      }
      rest = Buffer.from(data);
    }
    onLine(rest);
    finish();
  } catch (err) {
    child.kill();
    throw err;
  }
  let code: number | null;
  try {
    code = await exited;
  } catch (err) {
    if (signal?.aborted) throw signal.reason;
    throw new TreeReadError(`getfattr could not run (install the package "attr"): ${(err as Error).message}`, { cause: err });
  }
  if (signal?.aborted) throw signal.reason;
  if (code !== 0) throw new TreeReadError(`getfattr ${args.join(' ')} exited with ${code}: ${stderr.trim().split('\n').slice(-3).join(' | ')}`);
}

/** getfattr's escapes undone: backslash + three octal digits is one byte, every other byte stands for itself. */
export function unescapeOctal(s: Buffer): Buffer {
  if (!s.includes(0x5c)) return Buffer.from(s);
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const b = s[i] as number;
    if (b === 0x5c && i + 3 < s.length && /^[0-7]{3}$/.test(s.subarray(i + 1, i + 4).toString('latin1'))) {
      out.push(parseInt(s.subarray(i + 1, i + 4).toString('latin1'), 8));
      i += 3;
    } else out.push(b);
  }
  return Buffer.from(out);
}

/** The path of `full` inside the tree at `base`, each name spelled ('' for the top). */
function relativeSpelled(base: Buffer, full: Buffer): string {
  if (full.equals(base)) return '';
  if (!full.subarray(0, base.length).equals(base) || full[base.length] !== 0x2f) {
    throw new TreeReadError(`getfattr listed ${JSON.stringify(full.toString())}, outside ${JSON.stringify(base.toString())}`);
  }
  const names: string[] = [];
  let start = base.length + 1;
  for (let i = start; i <= full.length; i++) {
    if (i === full.length || full[i] === 0x2f) {
      names.push(spellBytes(full.subarray(start, i)));
      start = i + 1;
    }
  }
  return names.join('/');
}
