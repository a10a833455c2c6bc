import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalSnapshot } from '../../core/plan.ts';
import { sourceGroups } from '../../core/sources.ts';
import { mixedSourcesError } from '../../client/push/mixed-sources.ts';

// A snapshot taken here: its identity is its own UUID (a received one's is its Received UUID, `received` below).
const snap = (name: string, generation: number, origin: string | null, localUuid = `local-${name}`): LocalSnapshot => ({
  name, path: `/snapshots/${name}`, uuid: localUuid, localUuid, origin, generation, created: null, time: null,
});
const received = (s: LocalSnapshot, receivedUuid: string): LocalSnapshot => ({ ...s, uuid: receivedUuid });

test('snapshots group by their source (Parent UUID), oldest first, labelled by their common btrbk NAME', () => {
  const given = [snap('home.20261204T0400', 40, 'home-src'), snap('data.20261204T0200', 20, 'data-src'), snap('data.20261204T0100', 10, 'data-src')];
  const groups = sourceGroups(given);
  assert.deepEqual(groups.map((g) => [g.label, g.origin, g.snapshots.map((s) => s.name)]), [
    ['home', 'home-src', ['home.20261204T0400']],
    ['data', 'data-src', ['data.20261204T0100', 'data.20261204T0200']],
  ]);
  assert.equal(sourceGroups(given.slice(1)).length, 1, 'one source: one group');
  // Names that do not agree on a NAME leave the group unlabelled.
  assert.deepEqual(sourceGroups([snap('a.20261101', 1, 's'), snap('b.20261102', 2, 's')]).map((g) => g.label), [null]);
});

test('a received chain is one source: a full receive, then each snapshot received onto the one before', () => {
  const chain = [snap('r1', 1, null, 'l1'), snap('r2', 2, 'l1', 'l2'), snap('r3', 3, 'l2', 'l3')];
  assert.deepEqual(sourceGroups(chain).map((g) => [g.origin, g.snapshots.length]), [[null, 3]]);
  // Two full receives are two sources: nothing says they are of one.
  assert.equal(sourceGroups([snap('x', 1, null), snap('y', 2, null)]).length, 2);
});

test('a received copy whose Parent UUID is no known snapshot (the one it was received onto is gone) is of no known source', () => {
  // Restored onto an earlier restored copy that was deleted since: its Parent UUID names that copy, not a subvolume.
  const own = snap('home.20261206T0100', 30, 'home-src');
  const back = received(snap('home.20261202T0100', 20, 'deleted-restored-copy'), 'uuid-of-the-original');
  assert.deepEqual(sourceGroups([own, back]).map((g) => [g.origin, g.snapshots.map((s) => s.name)]), [
    ['home-src', ['home.20261206T0100']],
    [null, ['home.20261202T0100']],
  ]);
  // Taken here from a subvolume no longer listed: that is its source, as btrfs says.
  assert.deepEqual(sourceGroups([snap('x', 1, 'gone-src')]).map((g) => g.origin), ['gone-src']);
});

test('the refusal lists each source and the command that pushes it on its own', () => {
  const groups = sourceGroups([snap('data.20261204T0100', 10, 'data-src'), snap('home.20261204T0400', 40, 'home-src'), snap('loose', 50, 'third')]);
  const err = mixedSourcesError(groups, ['/snapshots']);
  assert.equal(err.code, 'mixed_sources');
  assert.equal(err.retryable, false);
  assert.match(err.message, /are of 3 different subvolumes/);
  assert.match(err.message, /data \(subvolume data-src\): data\.20261204T0100 \(1 snapshot\)\n {4}push it with: snapferry push --volume data \/snapshots\n/);
  assert.match(err.message, /home \(subvolume home-src\): home\.20261204T0400 \(1 snapshot\)\n {4}push it with: snapferry push --volume home \/snapshots\n/);
  assert.match(err.message, /source 3 \(subvolume third\): loose \(1 snapshot\)\n {4}push it with: snapferry push --volume VOLUME \/snapshots\/loose\n/);
  assert.match(err.message, /or give each source a volume in the client config/);
});

test('a restore into the folder (a received chain under the same NAME): the advice names the snapshots, never the folder that was refused', () => {
  const own = [snap('work.20261205T1100', 20, 'work-src'), snap('work.20261205T1200', 30, 'work-src')];
  const back = snap('work.20261205T1000', 40, null);
  const err = mixedSourcesError(sourceGroups([back, ...own]), ['/mnt/c/wsnaps']);
  assert.doesNotMatch(err.message, /push it with: snapferry push --volume work \/mnt\/c\/wsnaps\n/);
  assert.match(err.message, /work \(subvolume work-src\): .*\n {4}push it with: snapferry push --volume work \/snapshots\/work\.20261205T1100 \/snapshots\/work\.20261205T1200\n/);
  assert.match(err.message, /work \(received snapshots, source unknown\): work\.20261205T1000 \(1 snapshot\)\n {4}received here \(restored\?\) .*restore into another folder .*or delete these here/);
  // Too many to name: says how, without a command a screen long.
  const many = Array.from({ length: 6 }, (_, i) => snap(`work.2026120${i + 1}`, i + 1, 'work-src'));
  const long = mixedSourcesError(sourceGroups([...many, back]), ['/mnt/c/wsnaps']);
  assert.match(long.message, /push it with: name its snapshots one by one: snapferry push --volume work PATH\.\.\.\n/);
});
