/**
 * Which failures of `btrfs receive` are the stream's fault, read from what btrfs-progs prints (cmds/receive.c, the
 * same messages in 6.2 and 6.19). A stream that names a path its own snapshot does not have fails the same way
 * however often it is received; a fault of the server's (an I/O error, a full disk, a receive killed by a stop)
 * may heal. Pure: stderr in, the line that convicts the stream (or null) out.
 */

/** `path_cat_out` refused a path the stream named (too long for PATH_MAX): process_clone. */
const BAD_CLONE_PATH = /^ERROR: clone: (?:source|target) path invalid: /;

/** `error("cannot open %s: %m", path)`, for the errnos that say a path does not resolve (or is the wrong kind). */
const CANNOT_OPEN = /^ERROR: cannot open (.+): (No such file or directory|Not a directory|Is a directory|Too many levels of symbolic links|File name too long)$/;

/**
 * The line of a chrooted receive's stderr that shows its stream named a path that does not resolve, or null.
 *
 * btrfs receive prints "cannot open P" both for its own opens and for paths the stream names, so the path decides.
 * Chrooted to the folder it receives into, btrfs opens of its own accord only that folder (root_path), the
 * subvolume it creates (cur_subvol_path: one component, ".incoming-ID") and a parent or clone source subvolume
 * beside it (one component). A path with a component below a subvolume comes from the stream: open_inode_for_write
 * (WRITE, CLONE's target, TRUNCATE, ...: full_subvol_path + path) and process_clone's source (subvol path +
 * clone_path). Unchrooted receives print absolute paths of the host, where no such rule holds: null.
 */
export function streamPathFailure(stderr: string, chroot: boolean): string | null {
  if (!chroot) return null;
  for (const raw of stderr.split('\n')) {
    const line = raw.trimEnd();
    if (BAD_CLONE_PATH.test(line)) return line;
    const m = CANNOT_OPEN.exec(line);
    // "cannot open destination directory X: ..." is the target folder's own (the server's).
    if (!m || m[1]!.startsWith('destination directory ')) continue;
    const components = m[1]!.split('/').filter((c) => c !== '' && c !== '.');
    if (components.length >= 2) return line;
  }
  return null;
}
