import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planRestore } from '../../../client/restore/plan.ts';
import type { LocalSubvolume } from '../../../client/restore/local.ts';
import type { Snapshot } from '../../../core/protocol.ts';

const uuid = (n: number) => `00000000-0000-0000-0000-${String(n).padStart(12, '0')}`;

/** The server's catalog of s1..sN, oldest first, each pushed incrementally on the one before. */
function catalog(n: number): Snapshot[] {
  return Array.from({ length: n }, (_, i) => ({
    name: `s${i + 1}`, uuid: uuid(i + 1), serverUuid: uuid(100 + i), parentUuid: i === 0 ? null : uuid(i),
    receivedAt: `2026-01-0${i + 1}T00:00:00.000Z`, rawBytes: 1000 * (i + 1), wireBytes: 500, transferId: null, altered: null,
  }));
}

const local = (name: string, identity: string): LocalSubvolume => ({ name, path: `/r/${name}`, identity, uuid: identity, received: false });

test('with nothing in common the restore is full', () => {
  const plan = planRestore({ name: 's2', catalog: catalog(3), local: [local('other', uuid(99))] });
  assert.equal(plan.target.name, 's2');
  assert.equal(plan.parent, null);
  assert.equal(plan.present, null);
});

test('the parent is the newest snapshot the server received before the target that is held here, by identity', () => {
  // s1 restored (Received UUID), s2 the original (own UUID), s4 held too but newer than the target.
  const plan = planRestore({ name: 's3', catalog: catalog(4), local: [local('a', uuid(1)), local('b', uuid(2)), local('d', uuid(4))] });
  assert.equal(plan.parent?.server.name, 's2');
  assert.equal(plan.parent?.local.name, 'b');
});

test('the local name does not matter, only the identity', () => {
  const plan = planRestore({ name: 's3', catalog: catalog(3), local: [local('s2', uuid(77)), local('renamed', uuid(1))] });
  assert.equal(plan.parent?.server.name, 's1');
  assert.equal(plan.parent?.local.name, 'renamed');
});

test('a target already here is present: nothing to restore', () => {
  const plan = planRestore({ name: 's2', catalog: catalog(3), local: [local('s1', uuid(1)), local('copy', uuid(2))] });
  assert.equal(plan.present?.name, 'copy');
  assert.equal(plan.parent, null);
});

test('a snapshot the server does not hold is refused with what it holds', () => {
  assert.throws(
    () => planRestore({ name: 's9', catalog: catalog(2), local: [] }),
    (err: Error & { code?: string }) => err.code === 'snapshot_not_on_server' && /holds s1, s2/.test(err.message),
  );
  assert.throws(() => planRestore({ name: 's1', catalog: [], local: [] }), /holds no snapshot in this volume: no such volume, or nothing received into it yet/);
});

test('a snapshot the server flags as changed by hand is never the parent: the next older one held here is', () => {
  const flagged = catalog(4).map((s) => (s.name === 's2' ? { ...s, altered: { foundAt: '2026-01-05T00:00:00.000Z', what: ['not_read_only' as const] } } : s));
  const plan = planRestore({ name: 's3', catalog: flagged, local: [local('a', uuid(1)), local('b', uuid(2))] });
  assert.equal(plan.parent?.server.name, 's1');
});

test('only a target held in DEST_DIR is present; one held in --parent-dir only is restored into DEST_DIR all the same', () => {
  const inParentDir: LocalSubvolume = { name: 's2', path: '/p/s2', identity: uuid(2), uuid: uuid(2), received: false };
  const plan = planRestore({ name: 's2', catalog: catalog(3), local: [local('s1', uuid(1)), inParentDir], destDir: '/r' });
  assert.equal(plan.present, null);
  assert.equal(plan.elsewhere?.path, '/p/s2');
  assert.equal(plan.parent?.local.name, 's1');
  assert.equal(planRestore({ name: 's2', catalog: catalog(3), local: [inParentDir, local('s2', uuid(2))], destDir: '/r' }).present?.path, '/r/s2');
});

test('a parent changed here after it was sent (parent_changed) is passed over: the next older one held, else full', () => {
  const held = [local('a', uuid(1)), local('b', uuid(2))];
  assert.equal(planRestore({ name: 's3', catalog: catalog(3), local: held, changedParents: new Set([uuid(2)]) }).parent?.server.name, 's1');
  assert.equal(planRestore({ name: 's3', catalog: catalog(3), local: held, changedParents: new Set([uuid(1), uuid(2)]) }).parent, null);
});

/** The same catalog as an archive lists it: each snapshot only as the stream that was pushed (Snapshot.storedStream). */
const stored = (n: number): Snapshot[] => catalog(n).map((s) => ({ ...s, storedStream: true }));

test('a stored stream with none of its chain held here: the plan restores the chain from its full first', () => {
  const plan = planRestore({ name: 's4', catalog: stored(4), local: [local('other', uuid(99))] });
  assert.deepEqual(plan.before.map((s) => s.name), ['s1', 's2', 's3']);
  assert.equal(plan.parent, null);
  assert.equal(plan.target.name, 's4');
  // A btrfs server's catalog (no storedStream) sends from any parent: a full restore, no chain.
  assert.deepEqual(planRestore({ name: 's4', catalog: catalog(4), local: [] }).before, []);
});

test('a stored stream whose chain is held in part starts after the newest member held, never before it', () => {
  const plan = planRestore({ name: 's4', catalog: stored(4), local: [local('one', uuid(1)), local('two', uuid(2))] });
  assert.deepEqual(plan.before.map((s) => s.name), ['s3']);
  assert.equal(plan.parent?.local.name, 'two');
  const next = planRestore({ name: 's4', catalog: stored(4), local: [local('three', uuid(3))] });
  assert.deepEqual(next.before, []);
  assert.equal(next.parent?.server.name, 's3');
  // Held already: nothing to restore.
  assert.equal(planRestore({ name: 's4', catalog: stored(4), local: [local('s4', uuid(4))] }).present?.name, 's4');
});

test('a stored stream on another chain: only its own chain counts, and a chain_full flag does not stop it', () => {
  // s1 -> s2 and a second full s3 -> s4; s2 held here is of the other chain.
  const cat = stored(4).map((s) => (s.name === 's3' ? { ...s, parentUuid: null } : { ...s, altered: { foundAt: 'x', what: ['chain_full' as const] } }));
  const plan = planRestore({ name: 's4', catalog: cat, local: [local('s2', uuid(2))] });
  assert.deepEqual(plan.before.map((s) => s.name), ['s3']);
  assert.equal(plan.parent, null);
});

test('a stored stream whose held chain member was passed over (changedParents) restores its chain from the full', () => {
  const plan = planRestore({ name: 's3', catalog: stored(3), local: [local('a', uuid(2))], changedParents: new Set([uuid(2)]) });
  assert.equal(plan.parent, null);
  assert.deepEqual(plan.before.map((s) => s.name), ['s1', 's2']);
});

test('a stored stream whose chain lacks a member is refused with chain_broken, naming what is missing', () => {
  const cat = stored(4).filter((s) => s.name !== 's2');
  assert.throws(
    () => planRestore({ name: 's4', catalog: cat, local: [] }),
    (e: unknown) => e instanceof Error && (e as { code?: string }).code === 'chain_broken' && e.message.includes(`lacks ${uuid(2)}`) && e.message.includes('s3 is an incremental on it'),
  );
});

test('a volume with no snapshot at all is said to be a --volume to check, not a snapshot name to fix', () => {
  assert.throws(
    () => planRestore({ name: 'home.20261206T010000Z', volume: 'nope', catalog: [], local: [] }),
    (err: Error & { code?: string }) =>
      err.code === 'snapshot_not_on_server' && /holds no snapshot in volume nope: no such volume, or nothing received into it yet .*check --volume/.test(err.message),
  );
});
