/**
 * A server root the process may not write: its filesystem mounted read-only here, as snapferry-server.service's
 * ProtectSystem=strict makes every path outside its ReadWritePaths= (the README's /srv/backup/snapferry, say). serve
 * says so, and how to let the unit write there, rather than a bare EROFS on serve.lock. Run by hand (no
 * INVOCATION_ID, which systemd sets for its services), the unit is no part of it: the message says the mount is
 * read-only and how to remount, and names no unit (before, it sent the operator to snapferry-server.service all the same).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { execa } from 'execa';
import { SnapferryError } from '../../core/errors.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { checkServerRoot, readOnlyRoot } from '../../server/root-check.ts';
import { lockRoot } from '../../server/root-lock.ts';
import { createSmallBtrfs, rootOnly, snapshotReadonly } from '../fixtures/btrfs.ts';

function assertReadOnlyRoot(err: unknown, root: string): true {
  assert.ok(err instanceof SnapferryError, String(err));
  assert.equal(err.code, 'root_read_only', err.message);
  assert.match(err.message, new RegExp(`^the server root ${root} is read-only for this process\\.`));
  assert.match(err.message, /`systemctl edit snapferry-server`:\n {2}\[Service\]\n {2}ReadWritePaths=/);
  assert.ok(err.message.includes(`ReadWritePaths=${root}\n`), err.message);
  assert.deepEqual(err.details, { root, underSystemd: true });
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
  const had = process.env.INVOCATION_ID;
  // As systemd runs the unit: INVOCATION_ID set.
  process.env.INVOCATION_ID = '0123456789abcdef0123456789abcdef';
  t.after(() => (had === undefined ? delete process.env.INVOCATION_ID : (process.env.INVOCATION_ID = had)));
  await assert.rejects(lockRoot(btrfs.mountPoint, 'snapferry serve'), (err) => assertReadOnlyRoot(err, btrfs.mountPoint));
  // One not made yet: the mkdir fails.
  const missing = path.join(btrfs.mountPoint, 'backup', 'snapferry');
  await assert.rejects(checkServerRoot(missing), (err) => assertReadOnlyRoot(err, missing));
});

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

/** `snapferry serve` on `root` with this environment: its exit and what it said. */
async function serveOn(root: string, env: NodeJS.ProcessEnv) {
  return execa('node', [BIN, 'serve', '--root', root, '--listen', '127.0.0.1:0', '--no-auth'], { env, extendEnv: false, reject: false, timeout: 60_000 });
}

test('a read-only root, serve run by hand: says the mount is read-only and names no systemd unit; under the unit, its ReadWritePaths=', rootOnly, async (t) => {
  const btrfs = await createSmallBtrfs(t, 128);
  await execa('mount', ['-o', 'remount,ro', btrfs.mountPoint]);
  t.after(() => execa('mount', ['-o', 'remount,rw', btrfs.mountPoint]).then(() => undefined, () => undefined));
  const { INVOCATION_ID: _ignored, ...byHand } = process.env;

  const typed = await serveOn(btrfs.mountPoint, byHand);
  assert.equal(typed.exitCode, EXIT.usage, typed.stderr);
  assert.match(typed.stderr, new RegExp(`the server root ${btrfs.mountPoint} is read-only for this process: its filesystem is mounted read-only`));
  assert.match(typed.stderr, /mount -o remount,rw/);
  assert.doesNotMatch(typed.stderr, /systemctl|snapferry-server|ReadWritePaths/, typed.stderr);

  const unit = await serveOn(btrfs.mountPoint, { ...byHand, INVOCATION_ID: '0123456789abcdef0123456789abcdef' });
  assert.equal(unit.exitCode, EXIT.usage, unit.stderr);
  assert.ok(unit.stderr.includes(`ReadWritePaths=${btrfs.mountPoint}\n`), unit.stderr);
  assert.match(unit.stderr, /systemctl edit snapferry-server/);
});

test('the message for a read-only root, by hand and under the unit', () => {
  assert.doesNotMatch(readOnlyRoot('/srv/x', false).message, /systemctl|ReadWritePaths/);
  assert.match(readOnlyRoot('/srv/x', true).message, /ReadWritePaths=\/srv\/x\n/);
});

test('a read-only snapshot as root (or a folder in one): says so and how to get a writable root, not ReadWritePaths= or a remount (exit 2)', rootOnly, async (t) => {
  const btrfs = await createSmallBtrfs(t, 128);
  const source = path.join(btrfs.mountPoint, 'root');
  await execa('btrfs', ['subvolume', 'create', source]);
  const snapshot = path.join(btrfs.mountPoint, 'root.ro');
  await snapshotReadonly(source, snapshot);
  const { INVOCATION_ID: _ignored, ...byHand } = process.env;

  for (const env of [byHand, { ...byHand, INVOCATION_ID: '0123456789abcdef0123456789abcdef' }]) {
    const run = await serveOn(snapshot, env);
    assert.equal(run.exitCode, EXIT.usage, run.stderr);
    assert.ok(run.stderr.includes(`the server root ${snapshot} is a read-only btrfs subvolume (a read-only snapshot)`), run.stderr);
    assert.match(run.stderr, /The root must be a writable subvolume or folder: make one \(`btrfs subvolume create DIR`\)/);
    assert.ok(run.stderr.includes(`\`btrfs property set -ts ${snapshot} ro false\``), run.stderr);
    assert.doesNotMatch(run.stderr, /read-only for this process|ReadWritePaths|remount/, run.stderr);
  }

  // A root to make inside the snapshot (checkServerRoot's mkdir), and one that exists in it (the lock file).
  const inside = path.join(snapshot, 'srv', 'snapferry');
  await assert.rejects(checkServerRoot(inside), (err) => {
    assert.ok(err instanceof SnapferryError && err.code === 'root_read_only', String(err));
    assert.ok(err.message.startsWith(`the server root ${inside} is in ${snapshot}, a read-only btrfs subvolume`), err.message);
    assert.deepEqual(err.details, { root: inside, readOnlySubvolume: snapshot });
    assert.equal(exitCodeFor(err), 2);
    return true;
  });
  await execa('btrfs', ['property', 'set', '-ts', snapshot, 'ro', 'false']);
  await execa('mkdir', ['-p', inside]);
  await execa('btrfs', ['property', 'set', '-ts', snapshot, 'ro', 'true']);
  await assert.rejects(lockRoot(inside, 'snapferry prune-server'), (err) => {
    assert.ok(err instanceof SnapferryError && err.code === 'root_read_only', String(err));
    assert.ok(err.message.includes(`is in ${snapshot}, a read-only btrfs subvolume`), err.message);
    return true;
  });
});
