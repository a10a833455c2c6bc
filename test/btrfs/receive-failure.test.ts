import { test } from 'node:test';
import assert from 'node:assert/strict';
import { streamPathFailure } from '../../core/btrfs/receive-failure.ts';

// What btrfs-progs 6.2 prints for a chrooted receive (test/e2e/hostile-clone.test.ts shows the real thing).
const head = 'Chroot to /srv/root/volumes/alice/home\nAt subvol .incoming-35e9\n';

test("a path below the subvolume that does not resolve is the stream's fault", () => {
  for (const tail of [
    'ERROR: cannot open /.incoming-35e9/missing: No such file or directory', // process_clone, a self clone
    'ERROR: cannot open /.incoming-35e9/src/x: Not a directory',
    'ERROR: cannot open /.incoming-35e9/d: Is a directory', // open_inode_for_write on a directory
    'ERROR: cannot open /s1/gone: No such file or directory', // process_clone, from a parent snapshot beside it
    'ERROR: cannot open /.incoming-35e9/l/f: Too many levels of symbolic links',
    'ERROR: clone: source path invalid: aaaa',
    'ERROR: clone: target path invalid: bbbb',
  ]) {
    assert.equal(streamPathFailure(`${head}${tail}\n`, true), tail, tail);
  }
});

test("btrfs's own opens, other errnos and unchrooted receives are not blamed on the stream", () => {
  for (const tail of [
    'ERROR: cannot open /.incoming-35e9: No such file or directory', // finish_subvol: cur_subvol_path itself
    'ERROR: cannot open /: No such file or directory', // the chroot's root (root_path)
    'ERROR: cannot open destination directory /srv/root/volumes/alice/home: No such file or directory',
    'ERROR: cannot open /.incoming-35e9/f: Input/output error', // the disk
    'ERROR: cannot open /.incoming-35e9/f: No space left on device',
    'ERROR: cannot open /.incoming-35e9/f: Permission denied',
    'ERROR: failed to clone extents to f: Invalid argument',
    'ERROR: unexpected EOF in stream',
  ]) {
    assert.equal(streamPathFailure(`${head}${tail}\n`, true), null, tail);
  }
  assert.equal(streamPathFailure('ERROR: cannot open /srv/x/.incoming-1/missing: No such file or directory', false), null, 'absolute host paths say nothing');
});

test("a command of the stream that fails on a path its snapshot does not have, or has otherwise, is the stream's fault", () => {
  for (const tail of [
    'ERROR: unlink tampered.txt failed: No such file or directory', // process_unlink: a parent changed after it was sent
    'ERROR: unlink d failed: Is a directory',
    'ERROR: rmdir d/e failed: No such file or directory', // process_rmdir
    'ERROR: rmdir d failed: Directory not empty', // the parent holds more in d than the stream knows of
    'ERROR: rmdir f failed: Not a directory',
    'ERROR: rename a/b -> c failed: No such file or directory', // process_rename
    'ERROR: rename d -> e failed: Directory not empty',
    'ERROR: rename d -> e failed: File exists',
    'ERROR: link x/y -> z failed: No such file or directory', // process_link
    'ERROR: link y -> z failed: File exists',
    'ERROR: symlink l -> /etc failed: File exists', // process_symlink
    'ERROR: mkfile a/f failed: No such file or directory', // process_mkfile, in a directory the snapshot lacks
    'ERROR: mkfile d failed: Is a directory',
    'ERROR: mkdir d failed: File exists', // process_mkdir
    'ERROR: mknod n failed: File exists', // process_mknod and process_mksock
    'ERROR: mkfifo p failed: Not a directory',
    'ERROR: truncate f failed: No such file or directory',
    'ERROR: chmod f failed: Too many levels of symbolic links',
    'ERROR: chown f failed: No such file or directory',
    'ERROR: utimes f failed: No such file or directory',
    `ERROR: utimes ${'n'.repeat(300)} failed: File name too long`,
    'ERROR: lsetxattr f user.x=y failed: No such file or directory', // process_set_xattr
    'ERROR: lremovexattr f user.x failed: No data available', // process_remove_xattr: an xattr the parent lacks
    'ERROR: cannot open /.incoming-35e9/f for verity ioctl: No such file or directory', // process_enable_verity
  ]) {
    assert.equal(streamPathFailure(`${head}${tail}\n`, true), tail, tail);
  }
});

test("the server's own trouble with the stream's commands, and btrfs's own paths, are not blamed on the stream", () => {
  for (const tail of [
    'ERROR: unlink f failed: Input/output error', // the disk
    'ERROR: mkdir d failed: No space left on device',
    'ERROR: mkfile f failed: Disk quota exceeded',
    'ERROR: rename a -> b failed: Read-only file system',
    'ERROR: lsetxattr f user.x=y failed: No space left on device',
    'ERROR: chown f failed: Operation not permitted',
    'ERROR: chmod f failed: Permission denied',
    'ERROR: symlink l -> t failed: Cannot allocate memory',
    'ERROR: utimes f failed: Interrupted system call',
    'ERROR: unlink f failed: File exists', // an errno unlink cannot give for the stream's reasons: not judged
    'ERROR: lsetxattr f user.x=y failed: No data available', // ENODATA convicts a removal only
    'ERROR: utimes  failed: No such file or directory', // the empty path: the subvolume itself
    'ERROR: writing to f failed: No such file or directory', // a write on an open descriptor
    'ERROR: creating snapshot s1 -> .incoming-35e9 failed: No such file or directory', // process_snapshot: btrfs's own
    'ERROR: creating subvolume .incoming-35e9 failed: File exists', // process_subvol: btrfs's own
    'ERROR: cannot open /.incoming-35e9 for verity ioctl: No such file or directory',
    'ERROR: cannot open /.incoming-35e9/f for verity ioctl: Input/output error',
    'ERROR: cannot open destination directory /srv/root/volumes/alice/home: Not a directory',
  ]) {
    assert.equal(streamPathFailure(`${head}${tail}\n`, true), null, tail);
  }
  assert.equal(streamPathFailure('ERROR: unlink tampered.txt failed: No such file or directory', false), null, 'an unchrooted receive is not judged');
});
