/**
 * A server root the process may not write: its filesystem mounted read-only here, as snapferry-server.service's
 * ProtectSystem=strict makes every path outside its ReadWritePaths= (the README's /srv/backup/snapferry, say). serve
 * says so, and how to let the unit write there, rather than a bare EROFS on serve.lock.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { SnapferryError } from '../../core/errors.ts';
import { exitCodeFor } from '../../client/exit-codes.ts';
import { checkServerRoot } from '../../server/root-check.ts';
import { lockRoot } from '../../server/root-lock.ts';
import { createSmallBtrfs, rootOnly } from '../fixtures/btrfs.ts';

function assertReadOnlyRoot(err: unknown, root: string): true {
  assert.ok(err instanceof SnapferryError, String(err));
  assert.equal(err.code, 'root_read_only', err.message);
  assert.match(err.message, new RegExp(`^the server root ${root} is read-only for this process\\.`));
  assert.match(err.message, /`systemctl edit snapferry-server`:\n {2}\[Service\]\n {2}ReadWritePaths=/);
  assert.ok(err.message.includes(`ReadWritePaths=${root}\n`), err.message);
  assert.deepEqual(err.details, { root });
  // The operator's setup to fix, as a config that does not validate: the unit does not restart it (RestartPreventExitStatus=2).
  assert.equal(exitCodeFor(err), 2);
  return true;
}

test('a read-only root: serve\'s lock and a root to make are refused as root_read_only, naming ReadWritePaths=', rootOnly, async (t) => {
  const btrfs = await createSmallBtrfs(t, 128);
  await execa('mount', ['-o', 'remount,ro', btrfs.mountPoint]);
  t.after(() => execa('mount', ['-o', 'remount,rw', btrfs.mountPoint]).then(() => undefined, () => undefined));

  // A root that exists: it is on btrfs, and the lock file is where the write fails.
  await checkServerRoot(btrfs.mountPoint);
  await assert.rejects(lockRoot(btrfs.mountPoint, 'snapferry serve'), (err) => assertReadOnlyRoot(err, btrfs.mountPoint));
  // One not made yet: the mkdir fails.
  const missing = path.join(btrfs.mountPoint, 'backup', 'snapferry');
  await assert.rejects(checkServerRoot(missing), (err) => assertReadOnlyRoot(err, missing));
});
