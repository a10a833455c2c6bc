/**
 * The parent snapshot's entries for a receive's policy (core/wire/sendstream-symlinks.ts): what is at a path in it,
 * seen with lstat, so a stream cannot reach through a symlink the parent already had. The parent is read-only, so
 * what is looked up stays true while the receive runs. Synchronous because the policy checks each command as it is
 * parsed; it is one lstat for each directory on the way to a path the stream names, once per directory.
 */
import { lstatSync } from 'node:fs';
import type { ParentEntryKind, ParentEntryLookup } from '../wire/sendstream-symlinks.ts';

/** Looks entries up under `snapshotPath`; the stream's paths are bytes (latin1 strings here) and stay bytes. */
export function parentEntries(snapshotPath: string): ParentEntryLookup {
  const root = Buffer.from(`${snapshotPath}/`, 'utf8');
  return (rel: string): ParentEntryKind => {
    let st;
    try {
      st = lstatSync(Buffer.concat([root, Buffer.from(rel, 'latin1')]));
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      // Not there, or under something that is not a folder: nothing the stream could reach through.
      if (code === 'ENOENT' || code === 'ENOTDIR' || code === 'ENAMETOOLONG') return 'missing';
      throw err;
    }
    if (st.isSymbolicLink()) return 'symlink';
    return st.isDirectory() ? 'directory' : 'other';
  };
}
