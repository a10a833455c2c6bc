/**
 * Which failures of `btrfs receive` are the stream's fault, read from what btrfs-progs prints (cmds/receive.c, the
 * same messages in 6.2 and 6.19). A stream that names a path its own snapshot does not have (or has as another kind
 * of file) fails the same way however often it is received: the snapshot it builds is its parent's snapshot (or
 * empty) plus the stream's own commands, and neither changes between tries. A fault of the server's (an I/O error, a
 * full disk, a receive killed by a stop) may heal. Pure: stderr in, the line that convicts the stream (or null) out.
 *
 * The caller (core/btrfs/receive.ts) convicts only while the subvolume being built is still there: taken away from
 * under the receive, every path in it fails with the same words, and that is the server's fault.
 */

/** `path_cat_out` refused a path the stream named (too long for PATH_MAX): process_clone. */
const BAD_CLONE_PATH = /^ERROR: clone: (?:source|target) path invalid: /;

/**
 * The errnos that say a path does not resolve, or resolves to the wrong kind of file: ENOENT, ENOTDIR, EISDIR, ELOOP,
 * ENAMETOOLONG as strerror words them (run.ts runs btrfs with LC_ALL=C). None is a state of the server's disk.
 */
const UNRESOLVED = ['No such file or directory', 'Not a directory', 'Is a directory', 'Too many levels of symbolic links', 'File name too long'];

/**
 * `error("cannot open %s: %m", path)` (open_inode_for_write, process_clone) and process_enable_verity's
 * "cannot open %s for verity ioctl: %m", for the errnos that say a path does not resolve.
 */
const CANNOT_OPEN = new RegExp(`^ERROR: cannot open (.+?)(?: for verity ioctl)?: (${UNRESOLVED.join('|')})$`);

/** What receive.c prints when one of the stream's own commands fails: `error("OP %s failed: %m", path, ...)`. */
const OP_FAILED = /^ERROR: (\w+) (.+) failed: ([^:]+)$/;

const EEXIST = 'File exists';
const ENOTEMPTY = 'Directory not empty';
const ENODATA = 'No data available';

/**
 * The commands whose failure message names only the stream's paths (relative to the subvolume, chrooted or not:
 * each runs on full_subvol_path + the stream's path), and the errnos besides UNRESOLVED that are just as fixed by
 * the stream and its parent: a name that is already taken (EEXIST) or a directory that still holds entries
 * (ENOTEMPTY) in the snapshot being built, an xattr it does not have (ENODATA). ENOSPC, EDQUOT, EIO, EROFS, ENOMEM,
 * EPERM, EACCES, EINTR and the like are not listed: they are the server's, and may heal. The tester's case, a
 * parent changed on the client after it was sent, is "unlink F failed: No such file or directory".
 */
const STREAM_OPS: Readonly<Record<string, readonly string[]>> = {
  mkfile: [], // process_mkfile: creat() does not fail on an existing file, only on a directory (EISDIR)
  mkdir: [EEXIST], // process_mkdir
  mknod: [EEXIST], // process_mknod, and process_mksock, which prints "mknod" too
  mkfifo: [EEXIST], // process_mkfifo
  symlink: [EEXIST], // process_symlink: "symlink PATH -> TARGET failed"
  link: [EEXIST], // process_link: "link PATH -> LINK failed", both the stream's
  rename: [EEXIST, ENOTEMPTY], // process_rename: "rename FROM -> TO failed"; a directory over a non-empty one
  unlink: [], // process_unlink: a file the snapshot lacks (ENOENT), a directory (EISDIR)
  rmdir: [ENOTEMPTY], // process_rmdir: a directory the parent holds more in than the stream knows of
  truncate: [], // process_truncate
  chmod: [], // process_chmod
  chown: [], // process_chown
  utimes: [], // process_utimes
  lsetxattr: [], // process_set_xattr: "lsetxattr PATH NAME=DATA failed"
  lremovexattr: [ENODATA], // process_remove_xattr: "lremovexattr PATH NAME failed"
};

/**
 * The line of a chrooted receive's stderr that shows its stream cannot apply, or null.
 *
 * The commands' own messages (STREAM_OPS) name the stream's path alone. The subvolume itself is the empty path
 * ("utimes  failed", which the pattern does not take), and its vanishing is ruled out by the caller.
 *
 * btrfs receive prints "cannot open P" both for its own opens and for paths the stream names, so the path decides.
 * Chrooted to the folder it receives into, btrfs opens of its own accord only that folder (root_path), the
 * subvolume it creates (cur_subvol_path: one component, ".incoming-ID") and a parent or clone source subvolume
 * beside it (one component). A path with a component below a subvolume comes from the stream: open_inode_for_write
 * (WRITE, CLONE's target, TRUNCATE, ...: full_subvol_path + path) and process_clone's source (subvol path +
 * clone_path). Unchrooted receives print absolute paths of the host, where no such rule holds; snapferry runs none
 * (core/receive/checked-receive.ts chroots every one), so rather than judge half of their messages: null.
 */
export function streamPathFailure(stderr: string, chroot: boolean): string | null {
  if (!chroot) return null;
  for (const raw of stderr.split('\n')) {
    const line = raw.trimEnd();
    if (BAD_CLONE_PATH.test(line)) return line;
    if (opFailure(line)) return line;
    const m = CANNOT_OPEN.exec(line);
    // "cannot open destination directory X: ..." is the target folder's own (the server's).
    if (!m || m[1]!.startsWith('destination directory ')) continue;
    const components = m[1]!.split('/').filter((c) => c !== '' && c !== '.');
    if (components.length >= 2) return line;
  }
  return null;
}

/** Whether `line` is one of the stream's commands failing on an errno its stream and parent fix (STREAM_OPS). */
function opFailure(line: string): boolean {
  const m = OP_FAILED.exec(line);
  if (!m || !Object.hasOwn(STREAM_OPS, m[1]!)) return false;
  const errno = m[3]!;
  return UNRESOLVED.includes(errno) || STREAM_OPS[m[1]!]!.includes(errno);
}
