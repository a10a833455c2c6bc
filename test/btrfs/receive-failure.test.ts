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
