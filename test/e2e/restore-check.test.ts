/**
 * A restore is complete only once its final check passed: the snapshot's name in DEST_DIR says so. A check that was
 * interrupted leaves the received copy under a dot name for the next run to check (not to download again), and one
 * that found a difference keeps the copy for inspection under a name that says so, never under the snapshot's name.
 * --no-verify spares the check of what a run downloads, never of a copy an earlier run left unchecked.
 * A local parent changed after it was sent is refused by the server (parent_changed) and the restore goes around it.
 * Also what DEST_DIR may be: not a read-only snapshot (a clear error, exit 2), and a snapshot held in --parent-dir
 * only is restored into DEST_DIR all the same.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { mutate, rootOnly } from '../fixtures/btrfs.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { push } from '../../client/push/push.ts';
import { restore } from '../../client/restore/restore.ts';
import { describeRestored } from '../../client/restore/done-line.ts';
import type { Reporter } from '../../client/progress/report.ts';
import { assertReceived, createPair, recordingReporter } from './harness.ts';

const slow = { ...rootOnly, timeout: 240_000 };

/** s1 pushed, and an empty DEST_DIR on the client's filesystem. */
async function world(t: Parameters<typeof createPair>[0], seed: string) {
  const pair = await createPair(t, { fillMB: 4, seed });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await push({ server: server.url, volume: 'v', snapshots: [s1], retries: 0 }, recordingReporter());
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);
  return { pair, server, s1, dest };
}

/** A reporter that runs `then` (synchronously) when the final check of `name` starts, before it reads a byte. */
function atCheck(then: () => void, name = 's1'): Reporter & { notes: string[] } {
  const r = recordingReporter();
  return {
    ...r,
    note: (m) => {
      r.note(m);
      if (m.startsWith(`${name}: checking the restored snapshot`)) then();
    },
  };
}

/** The copy being checked: under the snapshot's name (before), or the dot name it waits under for the check. */
function beingChecked(dest: string): string {
  if (existsSync(path.join(dest, 's1'))) return path.join(dest, 's1');
  const waiting = readdirSync(dest).find((n) => n.startsWith('.snapferry-unchecked-'));
  assert.ok(waiting, `a copy being checked in ${readdirSync(dest).join(', ')}`);
  return path.join(dest, waiting);
}

test('a restore whose final check was interrupted is not complete: the next run checks it, without downloading it again', slow, async (t) => {
  const { server, s1, dest } = await world(t, 'check-interrupted');
  const stop = new AbortController();
  const first = atCheck(() => stop.abort());
  const err = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, signal: stop.signal }, first).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, 'the interrupted restore failed');
  // In process the stop is the signal's AbortError; the CLI says it as `interrupted` (exit 130).
  assert.ok(err.name === 'AbortError' || exitCodeFor(err) === EXIT.interrupted, String(err));
  assert.equal(existsSync(path.join(dest, 's1')), false, 'an unchecked restore does not have the snapshot\'s name');

  const again = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest }, again);
  const said = again.notes.join('\n');
  assert.doesNotMatch(said, /already here/, said);
  assert.match(said, /an earlier run received it and did not finish checking it .*; checking it now, without downloading it again/, said);
  assert.doesNotMatch(said, /downloaded and verified/, 'nothing downloaded again');
  assert.match(said, /^s1: identical to the server's copy/m, said);
  assert.equal(result.path, path.join(dest, 's1'));
  assert.ok(result.verifiedLineBytes !== null);
  // The last line says what this run did: it checked an earlier run's copy, not a full restore of 0 B.
  assert.match(describeRestored(result), /^done: restored s1 to .*\(received by an earlier run, checked now\), identical to the server's copy/, describeRestored(result));
  await assertReceived(s1, result.path);
  assert.equal((await btrfs.subvolumeShow(result.path)).receivedUuid, (await btrfs.subvolumeShow(s1)).uuid);
  assert.deepEqual(await fs.readdir(dest), ['s1'], 'no spool or unchecked copy left');
});

test('--no-verify does not name a copy an earlier run left unchecked: it is checked all the same, without downloading it again', slow, async (t) => {
  const { server, s1, dest } = await world(t, 'check-no-verify');
  const stop = new AbortController();
  await assert.rejects(restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, signal: stop.signal }, atCheck(() => stop.abort())));
  assert.match(readdirSync(dest).join(','), /^\.snapferry-unchecked-[0-9a-f-]+$/, 'the copy waits for its check');

  const again = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, verify: false }, again);
  const said = again.notes.join('\n');
  assert.ok(result.verifiedLineBytes !== null, `the check was made: ${said}`);
  assert.match(said, /^s1: identical to the server's copy/m, said);
  assert.doesNotMatch(said, /downloaded and verified/, 'nothing downloaded again');
  assert.match(said, /did not finish checking it .*; checking it now all the same \(--no-verify skips the check of a copy this run downloads, not of one left unchecked\)/, said);
  await assertReceived(s1, result.path);
  assert.deepEqual(await fs.readdir(dest), ['s1']);
});

test('a restore whose final check finds a difference keeps the copy for inspection under a name that says so; a rerun restores again', slow, async (t) => {
  const { server, s1, dest } = await world(t, 'check-differs');
  // The received copy changed between the receive and the check (as a disk or a hand might): the check must see it.
  const first = atCheck(() => {
    const at = beingChecked(dest);
    execFileSync('btrfs', ['property', 'set', '-f', '-ts', at, 'ro', 'false']);
    writeFileSync(path.join(at, 'not-from-the-server'), 'x');
    execFileSync('btrfs', ['property', 'set', '-ts', at, 'ro', 'true']);
  });
  const err = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest }, first).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, 'the restore failed');
  assert.equal(exitCodeFor(err), EXIT.differences, String(err));
  const kept = path.join(dest, '.snapferry-differs-s1');
  assert.equal(existsSync(path.join(dest, 's1')), false, 'a copy that differs does not have the snapshot\'s name');
  assert.ok(existsSync(path.join(kept, 'not-from-the-server')), 'the copy that differs is kept');
  assert.match(err.message, new RegExp(`kept for inspection at ${kept.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, not under its name`));

  // A second copy that differs is kept beside the first, not left unchecked for every later run to fail on.
  const second = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest }, first).then(() => null, (e: unknown) => e);
  assert.equal(exitCodeFor(second), EXIT.differences, String(second));
  assert.ok(existsSync(path.join(`${kept}-2`, 'not-from-the-server')), `the second copy that differs is kept: ${readdirSync(dest).join(', ')}`);
  assert.match(String(second), /kept for inspection at \S+-differs-s1-2, not under its name/);

  const again = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest }, again);
  const said = again.notes.join('\n');
  assert.doesNotMatch(said, /already here/, said);
  assert.match(said, /^s1: identical to the server's copy/m, said);
  await assertReceived(s1, result.path);
  assert.deepEqual((await fs.readdir(dest)).sort(), ['.snapferry-differs-s1', '.snapferry-differs-s1-2', 's1']);
});

test('a copy of a snapshot whose name takes all 255 bytes is kept for inspection when its check differs, exit 3, and again beside it', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 1, seed: 'check-long-name' });
  const server = await pair.startServer();
  const name = `s${'x'.repeat(254)}`;
  const snap = await pair.snapshot(name);
  await push({ server: server.url, volume: 'v', snapshots: [snap], retries: 0 }, recordingReporter());
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);
  const changed = atCheck(() => {
    const at = path.join(dest, readdirSync(dest).find((n) => n.startsWith('.snapferry-unchecked-')) ?? name);
    execFileSync('btrfs', ['property', 'set', '-f', '-ts', at, 'ro', 'false']);
    writeFileSync(path.join(at, 'not-from-the-server'), 'x');
    execFileSync('btrfs', ['property', 'set', '-ts', at, 'ro', 'true']);
  }, name);
  for (const run of [1, 2]) {
    const err = await restore({ server: server.url, volume: 'v', snapshot: name, destDir: dest }, changed).then(() => null, (e: unknown) => e);
    assert.equal(exitCodeFor(err), EXIT.differences, `run ${run}: ${String(err)}`);
    const kept = readdirSync(dest).filter((n) => n.startsWith('.snapferry-differs-')).sort();
    assert.equal(kept.length, run, `run ${run} kept its copy: ${readdirSync(dest).join(', ')}`);
    for (const k of kept) assert.ok(existsSync(path.join(dest, k, 'not-from-the-server')), k);
    assert.deepEqual(readdirSync(dest).filter((n) => n.startsWith('.snapferry-unchecked-')), [], 'no copy left unchecked');
  }
});

test('restore into a read-only snapshot says so and what to do, exit 2', slow, async (t) => {
  const { server, s1 } = await world(t, 'check-readonly');
  const err = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: s1 }, recordingReporter()).then(() => null, (e: unknown) => e);
  assert.ok(err instanceof Error, 'the restore failed');
  assert.equal((err as { code?: string }).code, 'restore_target_read_only', String(err));
  assert.equal(exitCodeFor(err), EXIT.usage);
  assert.match(err.message, new RegExp(`^DEST_DIR ${s1} is read-only .*; choose another folder`));
});

/** The uid that stands for another user of the restoring machine (nobody): it owns what it plants, nothing more. */
const OTHER_UID = 65534;

test('a DEST_DIR another user can write, or a folder above it they can rename, is refused before anything is written through it, exit 2', slow, async (t) => {
  const { pair, server, s1 } = await world(t, 'check-unsafe-dest');
  const victim = path.join(pair.client.mountPoint, 'victim');
  await fs.mkdir(victim);
  const uuid = (await btrfs.subvolumeShow(s1)).uuid;
  const refused = async (destDir: string, blamed: string, why: RegExp): Promise<void> => {
    const err = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir }, recordingReporter()).then(() => null, (e: unknown) => e);
    assert.ok(err instanceof Error, `the restore into ${destDir} was refused`);
    assert.equal((err as { code?: string }).code, 'restore_target_unsafe', String(err));
    assert.equal(exitCodeFor(err), EXIT.usage);
    assert.ok(err.message.includes(blamed), err.message);
    assert.match(err.message, why);
    assert.deepEqual(await fs.readdir(victim), [], 'nothing was written where the planted symlink leads');
  };

  // The other user's own folder, with the spool's name (the server lists the UUID) planted as a symlink by them.
  const theirs = path.join(pair.client.mountPoint, 'theirs');
  await fs.mkdir(theirs);
  await fs.chown(theirs, OTHER_UID, OTHER_UID);
  await fs.symlink(victim, path.join(theirs, `.snapferry-restore-${uuid}`));
  await fs.lchown(path.join(theirs, `.snapferry-restore-${uuid}`), OTHER_UID, OTHER_UID);
  await refused(theirs, `DEST_DIR ${theirs} is owned by uid ${OTHER_UID}`, /chown root and chmod go-w/);

  // Root's folder that every user may write, sticky or not: anyone may plant their own entry there.
  const open = path.join(pair.client.mountPoint, 'open');
  await fs.mkdir(open);
  await fs.chmod(open, 0o1777);
  await refused(open, `DEST_DIR ${open} is writable by every user`, /or restore into a folder whose path only root can change$/);

  // Root's own 0755 folder inside a folder others may write without the sticky bit: it can be renamed and replaced.
  const shared = path.join(pair.client.mountPoint, 'shared');
  const inside = path.join(shared, 'restored');
  await fs.mkdir(inside, { recursive: true });
  await fs.chmod(shared, 0o777);
  await refused(inside, `${shared}, a folder on its way, is writable by every user without the sticky bit`, /: restore into a folder whose path only root can change$/);

  // With the sticky bit (as /tmp), no other user can rename root's folder in it: restored as asked.
  await fs.chmod(shared, 0o1777);
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: inside }, recordingReporter());
  await assertReceived(s1, result.path);
});

test('a snapshot held in --parent-dir but not in DEST_DIR is restored into DEST_DIR', slow, async (t) => {
  const { pair, server, s1, dest } = await world(t, 'check-parent-dir');
  const report = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: dest, parentDir: pair.snaps }, report);
  assert.equal(result.restored, true, report.notes.join('\n'));
  assert.equal(result.path, path.join(dest, 's1'));
  assert.match(report.notes.join('\n'), new RegExp(`s1 is already at ${s1} \\(--parent-dir\\), not in ${dest}: restoring it into ${dest} as asked`));
  await assertReceived(s1, result.path);
  assert.equal((await btrfs.subvolumeShow(result.path)).receivedUuid, (await btrfs.subvolumeShow(s1)).uuid);
});

test('a local parent changed after it was sent is not built on: the restore says so and restores in full, as push refuses it', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'check-changed-parent' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'check-changed-parent');
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0 }, recordingReporter());
  // s2 lost here; then s1 changed by hand (writable, one byte, read-only again), as `btrfs property set` allows.
  const s2Copy = path.join(pair.client.mountPoint, 's2-as-pushed');
  await btrfs.snapshot(s2, s2Copy, { readonly: true });
  await btrfs.deleteSubvolume(s2);
  await btrfs.setReadonly(s1, false);
  await fs.appendFile(path.join(s1, 'changed-here'), 'x');
  await btrfs.setReadonly(s1, true);
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);

  const report = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's2', destDir: dest, parentDir: pair.snaps }, report);
  const said = report.notes.join('\n');
  assert.match(said, new RegExp(`s2: not restored on s1: ${s1} here was changed after it was sent, .*\\(parent_changed\\); restoring it in full instead`), said);
  assert.equal(result.parent, null, 'a full restore');
  assert.match(said, /^s2: identical to the server's copy/m, said);
  await assertReceived(s2Copy, result.path);
});

test('a parent btrfs receive would not take (another copy with its identity elsewhere on the filesystem) is not built on', slow, async (t) => {
  const pair = await createPair(t, { fillMB: 4, seed: 'check-rival-parent' });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  await mutate(pair.source, 'check-rival-parent');
  const s2 = await pair.snapshot('s2');
  await push({ server: server.url, volume: 'v', snapshots: [s1, s2], retries: 0 }, recordingReporter());
  const s2Copy = path.join(pair.client.mountPoint, 's2-as-pushed');
  await btrfs.snapshot(s2, s2Copy, { readonly: true });
  await btrfs.deleteSubvolume(s2);
  // An earlier restore of s1 in another folder: its Received UUID is s1's UUID, which btrfs receive looks up first.
  const earlier = path.join(pair.client.mountPoint, 'earlier');
  await fs.mkdir(earlier);
  await restore({ server: server.url, volume: 'v', snapshot: 's1', destDir: earlier }, recordingReporter());
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(dest);

  const report = recordingReporter();
  const result = await restore({ server: server.url, volume: 'v', snapshot: 's2', destDir: dest, parentDir: pair.snaps }, report);
  const said = report.notes.join('\n');
  assert.match(said, new RegExp(`s2: not restored on s1: btrfs receive would take its parent by identity and could build on ${path.join(earlier, 's1')} .* instead of ${s1}; restoring it in full instead`), said);
  assert.equal(result.parent, null, 'a full restore');
  await assertReceived(s2Copy, result.path);
  assert.equal((await btrfs.subvolumeShow(result.path)).parentUuid, null, 'received on nothing');
});
