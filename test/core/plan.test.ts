import { test } from 'node:test';
import assert from 'node:assert/strict';
import { nextParent, planPush, serverView, type LocalSnapshot } from '../../core/plan.ts';

const snap = (name: string, generation: number, origin: string | null = 'src'): LocalSnapshot => ({
  name,
  path: `/snaps/${name}`,
  uuid: `uuid-${name}`,
  localUuid: `uuid-${name}`,
  origin,
  generation,
  created: null,
  time: null,
});
const held = (...s: LocalSnapshot[]) => s.map((x) => ({ uuid: x.uuid, name: x.name }));
const names = (steps: { snapshot: LocalSnapshot; parent: LocalSnapshot | null }[]) =>
  steps.map((s) => `${s.parent?.name ?? 'full'}->${s.snapshot.name}`);

const [a, b, c, d, e] = [snap('a', 10), snap('b', 20), snap('c', 30), snap('d', 40), snap('e', 50)];

test('nothing in common: the oldest goes in full, the rest chain on it, oldest first', () => {
  const plan = planPush({ requested: [c, a, b], candidates: [], server: [] });
  assert.deepEqual(names(plan.steps), ['full->a', 'a->b', 'b->c']);
  assert.deepEqual(plan.notes, []);
});

test('a parent held by the server is found among local snapshots that were not requested', () => {
  const plan = planPush({ requested: [c], candidates: [a, b, c], server: held(a, b) });
  assert.deepEqual(names(plan.steps), ['b->c']);
});

test('a directory of five with two on the server sends the three newer, from the newest common', () => {
  const plan = planPush({ requested: [a, b, c, d, e], candidates: [a, b, c, d, e], server: held(a, b) });
  assert.deepEqual(names(plan.steps), ['b->c', 'c->d', 'd->e']);
  assert.deepEqual(plan.present.map((s) => s.name), ['a', 'b']);
});

test('everything present: nothing to send', () => {
  const plan = planPush({ requested: [a, b], candidates: [a, b], server: held(a, b) });
  assert.equal(plan.steps.length, 0);
  assert.equal(plan.present.length, 2);
});

test('snapshots older than the newest on the server are skipped with a note', () => {
  const plan = planPush({ requested: [a, b, c], candidates: [a, b, c], server: held(b) });
  assert.deepEqual(names(plan.steps), ['b->c']);
  assert.deepEqual(plan.skipped.map((s) => s.name), ['a']);
  assert.match(plan.notes[0] ?? '', /skipping a/);
});

test('a parent must be older than the snapshot it is the parent of', () => {
  const plan = planPush({ requested: [b], candidates: [a, b, c], server: held(c) });
  assert.deepEqual(names(plan.steps), ['full->b']);
});

test('an admin-deleted parent: falls back to the newest that remains and says so', () => {
  const plan = planPush({
    requested: [d],
    candidates: [a, b, c, d],
    server: held(a, b),
    removed: [{ uuid: c.uuid, name: 'c', reason: 'deleted from disk' }],
  });
  assert.deepEqual(names(plan.steps), ['b->d']);
  assert.match(plan.notes.join('\n'), /no longer holds c .*using b as parent/);
});

test('a snapshot of another source deleted on the server is not named as the parent it would have been', () => {
  const other = snap('other', 25, 'elsewhere');
  const plan = planPush({
    requested: [c],
    candidates: [a, other, c],
    server: held(a),
    removed: [{ uuid: other.uuid, name: 'other', reason: 'deleted from disk' }],
  });
  assert.deepEqual(names(plan.steps), ['a->c']);
  assert.deepEqual(plan.notes, [], 'other could never have been the parent of c');
});

test('all parents deleted: a full send, and the note says so', () => {
  const plan = planPush({
    requested: [b],
    candidates: [a, b],
    server: [],
    removed: [{ uuid: a.uuid, name: 'a', reason: 'deleted from disk' }],
  });
  assert.deepEqual(names(plan.steps), ['full->b']);
  assert.match(plan.notes.join('\n'), /sending it in full/);
});

test('a common snapshot of the same source wins over a newer one of another source', () => {
  const other = snap('other', 25, 'elsewhere');
  const plan = planPush({ requested: [c], candidates: [a, b, other, c], server: held(b, other) });
  assert.deepEqual(names(plan.steps), ['b->c']);
});

test('duplicates in the request are sent once', () => {
  const plan = planPush({ requested: [a, a, b], candidates: [], server: [] });
  assert.deepEqual(names(plan.steps), ['full->a', 'a->b']);
});

// Each test below breaks one rule of the planner; the comment before it names the rule.

test('snapshots of one generation go in name order', () => {
  // byAge: generation first, then name, so two snapshots made in one transaction still have an order.
  const [x1, x2] = [snap('x1', 10), snap('x2', 10)];
  const plan = planPush({ requested: [x2, x1], candidates: [], server: [] });
  assert.deepEqual(names(plan.steps), ['full->x1', 'x1->x2']);
});

test('a UUID given twice is the first snapshot given with it', () => {
  const alias: LocalSnapshot = { ...a, name: 'a-alias', path: '/elsewhere/a' };
  const plan = planPush({ requested: [a, alias], candidates: [], server: [] });
  assert.deepEqual(names(plan.steps), ['full->a']);
});

test('the parent is the newest common snapshot, in whatever order the candidates come', () => {
  const plan = planPush({ requested: [d], candidates: [c, a, b], server: held(b, c, a) });
  assert.deepEqual(names(plan.steps), ['c->d']);
});

test('a snapshot of another source is never a parent, even when none of its own is held (issue 19)', () => {
  const other = snap('other', 25, 'elsewhere');
  const plan = planPush({ requested: [c], candidates: [other, c], server: held(other) });
  assert.deepEqual(names(plan.steps), ['full->c']);
  assert.deepEqual(plan.notes, ['sending c in full: the snapshots this volume holds (other, ...) are of another subvolume (other is a snapshot of subvolume elsewhere, c of src), and a snapshot of another subvolume is never a parent; give each source a volume of its own (--volume NAME)']);
  // With a parent of its own source, nothing to say about the other.
  assert.deepEqual(planPush({ requested: [c], candidates: [b, other, c], server: held(b, other) }).notes, []);
});

test('a received chain (full receive, then incrementals onto it) is one source: its own snapshots are parents', () => {
  // btrfs receive: the first has no Parent UUID, each later one the local UUID of the one it was received onto.
  const r1: LocalSnapshot = { ...snap('r1', 10, null), uuid: 'orig-1', localUuid: 'local-1' };
  const r2: LocalSnapshot = { ...snap('r2', 20, 'local-1'), uuid: 'orig-2', localUuid: 'local-2' };
  const r3: LocalSnapshot = { ...snap('r3', 30, 'local-2'), uuid: 'orig-3', localUuid: 'local-3' };
  const other = snap('other', 25, 'elsewhere');
  const plan = planPush({ requested: [r3], candidates: [r1, r2, other, r3], server: held(r1, r2, other) });
  assert.deepEqual(names(plan.steps), ['r2->r3']);
});

test('two snapshots of unknown origin are not of the same source', () => {
  const orphan = snap('orphan', 30, null);
  const older = snap('older', 10, null);
  const plan = planPush({ requested: [orphan], candidates: [older, b, orphan], server: held(older, b) });
  // b (generation 20, origin 'src') is newer than `older`; an orphan has no source to prefer, so the newest wins.
  assert.deepEqual(names(plan.steps), ['b->orphan']);
});

/**
 * A twin: another source's snapshot taken in the same transaction under the same name (two subvolumes snapshotted
 * together into per-volume folders). It is as old as its twin, so it is neither older nor newer than it.
 */
const twin = (s: LocalSnapshot): LocalSnapshot => ({ ...s, uuid: `${s.uuid}-twin`, localUuid: `${s.localUuid}-twin`, path: `/other${s.path}`, origin: 'other-src' });

test('a snapshot as old as the newest on the server is sent, not skipped', () => {
  const plan = planPush({ requested: [b, twin(b)], candidates: [], server: held(b) });
  assert.deepEqual(plan.skipped, []);
  assert.deepEqual(plan.steps.map((s) => s.snapshot.uuid), [twin(b).uuid]);
});

test('a snapshot as old as the one being sent is not its parent', () => {
  const plan = planPush({ requested: [c], candidates: [twin(c)], server: held(twin(c)) });
  assert.deepEqual(names(plan.steps), ['full->c']);
});

test('a lost snapshot newer than the one sent, or older than its parent, is not noted', () => {
  const removed = (...s: LocalSnapshot[]) => s.map((x) => ({ uuid: x.uuid, name: x.name, reason: 'deleted from disk' }));
  const newer = planPush({ requested: [c], candidates: [a, b, c, d], server: held(b), removed: removed(d) });
  assert.deepEqual(names(newer.steps), ['b->c']);
  assert.deepEqual(newer.notes, []);
  const older = planPush({ requested: [d], candidates: [a, b, c, d], server: held(c), removed: removed(a) });
  assert.deepEqual(names(older.steps), ['c->d']);
  assert.deepEqual(older.notes, []);
  const fullSend = planPush({ requested: [b], candidates: [a, b, c], server: [], removed: removed(c) });
  assert.deepEqual(fullSend.notes, [], 'c is newer than b: it could never have been its parent');
});

test('a lost snapshot as old as the one sent, or as its parent, is not noted', () => {
  const removed = (...s: LocalSnapshot[]) => s.map((x) => ({ uuid: x.uuid, name: x.name, reason: 'deleted from disk' }));
  const asOld = planPush({ requested: [c], candidates: [b, twin(c)], server: held(b), removed: removed(twin(c)) });
  assert.deepEqual(asOld.notes, []);
  const asParent = planPush({ requested: [c], candidates: [b, twin(b)], server: held(b), removed: removed(twin(b)) });
  assert.deepEqual(names(asParent.steps), ['b->c']);
  assert.deepEqual(asParent.notes, []);
});

test('a lost snapshot that this machine does not have is not noted', () => {
  const plan = planPush({ requested: [c], candidates: [a, c], server: held(a), removed: [{ uuid: 'uuid-gone', name: 'gone', reason: 'deleted from disk' }] });
  assert.deepEqual(names(plan.steps), ['a->c']);
  assert.deepEqual(plan.notes, []);
});

test('of several lost snapshots, the note names the newest, in whatever order they come', () => {
  const plan = planPush({
    requested: [e],
    candidates: [a, b, c, d, e],
    server: held(a),
    removed: [d, c].map((x) => ({ uuid: x.uuid, name: x.name, reason: 'deleted from disk' })),
  });
  assert.deepEqual(names(plan.steps), ['a->e']);
  assert.equal(plan.notes.length, 1);
  assert.match(plan.notes[0]!, /no longer holds d /);
});

test('a snapshot the server flags as changed by hand is never the parent: the newest intact one is, with a note', () => {
  const server = [...held(a), { uuid: b.uuid, name: b.name, altered: { what: ['not_read_only', 'received_uuid_lost'] } }];
  const plan = planPush({ requested: [c], candidates: [a, b, c], server });
  assert.deepEqual(names(plan.steps), ['a->c']);
  assert.deepEqual(plan.notes, ["the server's copy of b was changed by hand on the server (not_read_only, received_uuid_lost), so it cannot be the parent of c; using a as parent instead"]);
});

test('a snapshot whose archive chain is full (chain_full) is passed over with a note that says so, not "changed by hand"', () => {
  const server = [{ uuid: a.uuid, name: a.name, altered: { what: ['chain_full'] } }, { uuid: b.uuid, name: b.name, altered: { what: ['chain_full'] } }];
  const plan = planPush({ requested: [c], candidates: [a, b, c], server });
  assert.deepEqual(names(plan.steps), ['full->c']);
  assert.equal(plan.notes.length, 1);
  assert.doesNotMatch(plan.notes[0]!, /by hand/);
  assert.match(plan.notes[0]!, /^the archive's chain of b is full .*fullEvery\.incrementals.*, so c cannot be an incremental on it and a full is sent again; sending it in full instead$/);
});

test('when the only common snapshot is flagged, the push goes in full; the flagged one still counts as held', () => {
  const server = [{ uuid: b.uuid, name: b.name, altered: { what: ['not_read_only'] } }];
  const plan = planPush({ requested: [b, c], candidates: [b, c], server });
  assert.deepEqual(names(plan.steps), ['full->c']);
  assert.deepEqual(plan.present.map((s) => s.name), ['b'], 'it is on the server: never sent again');
  assert.match(plan.notes.join('\n'), /cannot be the parent of c; sending it in full instead/);
});

test('a snapshot changed here after it was sent (changedParents: the server refused it, parent_changed) is never the parent: the newest intact one is, with one note naming it', () => {
  const plan = planPush({ requested: [c], candidates: [a, b, c], server: held(a, b), changedParents: new Set([b.uuid]) });
  assert.deepEqual(names(plan.steps), ['a->c']);
  assert.deepEqual(plan.notes, [
    "b on this machine was changed after it was sent (the server refused an incremental on it: parent_changed), so it cannot be the parent of c: the server's copy is b as it was sent; using a as parent instead",
  ]);
  // It is still held by the server: never sent again, and with no other intact parent the send is full.
  const alone = planPush({ requested: [b, c], candidates: [b, c], server: held(b), changedParents: new Set([b.uuid]) });
  assert.deepEqual(names(alone.steps), ['full->c']);
  assert.deepEqual(alone.present.map((s) => s.name), ['b']);
  assert.match(alone.notes.join('\n'), /^b on this machine was changed after it was sent .*; sending it in full instead$/);
  // Without the exclusion, b is the parent as before.
  assert.deepEqual(names(planPush({ requested: [c], candidates: [a, b, c], server: held(a, b) }).steps), ['b->c']);
});

// Age is when a snapshot was taken (core/taken-order.ts), not its btrfs generation, which a receive makes anew.

/** A snapshot dated by its name, as client/local/snapshots.ts dates btrbk's and ours. */
const taken = (name: string, generation: number, iso: string, over: Partial<LocalSnapshot> = {}): LocalSnapshot => ({
  ...snap(name, generation),
  time: new Date(iso),
  ...over,
});
/** Restored from the server onto `onto` (an incremental receive): the original's UUID, a new local one, a new generation. */
const restored = (original: LocalSnapshot, onto: LocalSnapshot, generation: number, time: Date | null = original.time): LocalSnapshot => ({
  ...original,
  localUuid: `restored-${original.name}`,
  origin: onto.localUuid,
  generation,
  time,
});

test('an older snapshot restored into the folder does not hide a newer one the server lacks (tester\'s repro)', () => {
  const t1000 = taken('w2.20261205T1000', 10, '2026-12-05T10:00:00Z');
  const t1100 = taken('w2.20261205T1100', 20, '2026-12-05T11:00:00Z');
  const t1200 = taken('w2.20261205T1200', 30, '2026-12-05T12:00:00Z');
  // 1100 was deleted here, then restored: the restore is the newest subvolume on this filesystem.
  const back = restored(t1100, t1000, 40);
  const plan = planPush({ requested: [t1000, back, t1200], candidates: [t1000, back], server: held(t1000, t1100) });
  assert.deepEqual(plan.skipped.map((s) => s.name), []);
  assert.deepEqual(names(plan.steps), ['w2.20261205T1100->w2.20261205T1200']);
  assert.deepEqual(plan.present.map((s) => s.name), ['w2.20261205T1000', 'w2.20261205T1100']);
  assert.deepEqual(plan.notes, []);
});

test('the parent is the newest common snapshot by time taken, not a restored older one made later', () => {
  const h01 = taken('home.20261201T0100', 10, '2026-12-01T01:00:00Z');
  const h02 = taken('home.20261202T0100', 20, '2026-12-02T01:00:00Z');
  const h03 = taken('home.20261203T0100', 30, '2026-12-03T01:00:00Z');
  const back = restored(h02, h01, 40);
  const h04 = taken('home.20261204T0100', 50, '2026-12-04T01:00:00Z');
  const plan = planPush({ requested: [h01, back, h03, h04], candidates: [h01, back, h03], server: held(h01, h02, h03) });
  assert.deepEqual(names(plan.steps), ['home.20261203T0100->home.20261204T0100']);
  assert.deepEqual(plan.skipped, []);
});

test('a restored snapshot whose name has no time is dated by the takenAt the server kept for it', () => {
  const w10 = taken('w.20261205T1000', 10, '2026-12-05T10:00:00Z');
  const manual = taken('manual', 15, '2026-12-05T10:30:00Z');
  const w12 = taken('w.20261205T1200', 30, '2026-12-05T12:00:00Z');
  // Its btrfs Creation time is the restore: the gatherer leaves its time empty (client/local/taken-at.ts).
  const back = restored(manual, w10, 40, null);
  const server = [...held(w10), { ...held(manual)[0]!, takenAt: '2026-12-05T10:30:00.000Z' }];
  const plan = planPush({ requested: [w10, back, w12], candidates: [w10, back], server });
  assert.deepEqual(names(plan.steps), ['manual->w.20261205T1200']);
  assert.deepEqual(plan.skipped, []);
});

test('a restored copy received onto one deleted since is a parent, not "another subvolume" (explorer\'s repro)', () => {
  // Pushed h01, h02; restored both into another folder (h02 onto the restored h01); that h01 copy and the originals
  // deleted since. The h02 copy's Parent UUID names the deleted copy: before, that was taken for another source, and
  // push sent h06 in full with a note to give "each source a volume of its own".
  const h01 = taken('home.20261201T0100', 10, '2026-12-01T01:00:00Z');
  const h02 = taken('home.20261202T0100', 20, '2026-12-02T01:00:00Z');
  const copy01 = { ...restored(h01, h01, 30), origin: null }; // a full receive: no Parent UUID
  const copy02 = restored(h02, copy01, 40);
  const h06 = taken('home.20261206T0100', 50, '2026-12-06T01:00:00Z');
  const plan = planPush({ requested: [h06], candidates: [copy02], server: held(h01, h02) });
  assert.deepEqual(names(plan.steps), ['home.20261202T0100->home.20261206T0100']);
  assert.deepEqual(plan.notes, []);
});

test('a snapshot dated by nothing at all puts every snapshot in generation order, as before snapshot times', () => {
  const x = taken('x', 10, '2026-12-05T12:00:00Z');
  const y = snap('y', 20);
  const z = taken('z', 30, '2026-12-05T10:00:00Z');
  // By time z would come before x; with y undated, no order by time can place it, so generation decides for all.
  const plan = planPush({ requested: [z, y, x], candidates: [], server: [] });
  assert.deepEqual(names(plan.steps), ['full->x', 'x->y', 'y->z']);
});

// Sealing (core/sealing.ts): a chain is sealed one way throughout, so a push sealed otherwise than the newest common
// snapshot starts a new chain. Before the rule, a sealed incremental was planned on a plain full (the tester's case).
const KEY = '0123456789abcdef';
const OTHER_KEY = 'fedcba9876543210';
const sealed = (by: string | null, ...s: LocalSnapshot[]) => s.map((x) => ({ uuid: x.uuid, name: x.name, sealedBy: by }));

test('encrypt: turned on after plain pushes: a full send, not a sealed incremental on the plain chain, and a note says why once', () => {
  const plan = planPush({ requested: [c, d], candidates: [a, b, c, d], server: sealed(null, a, b), sealing: KEY });
  assert.deepEqual(names(plan.steps), ['full->c', 'c->d']);
  assert.equal(plan.notes.length, 1, plan.notes.join('\n'));
  assert.match(plan.notes[0]!, /this push is sealed under key 0123456789abcdef and the server's b is plain .*sending it in full instead/);
});

test('encrypt: turned off after sealed pushes: a full send, not a plain incremental on the sealed chain', () => {
  const plan = planPush({ requested: [c], candidates: [a, b, c], server: sealed(KEY, a, b) });
  assert.deepEqual(names(plan.steps), ['full->c']);
  assert.match(plan.notes.join('\n'), /this push is plain \(no encrypt:\) and the server's b is sealed under key 0123456789abcdef/);
});

test('another key: a full send; the same key: an incremental as before', () => {
  assert.deepEqual(names(planPush({ requested: [c], candidates: [a, b, c], server: sealed(KEY, a, b), sealing: OTHER_KEY }).steps), ['full->c']);
  const same = planPush({ requested: [c], candidates: [a, b, c], server: sealed(KEY, a, b), sealing: KEY });
  assert.deepEqual(names(same.steps), ['b->c']);
  assert.deepEqual(same.notes, []);
});

test('the newest common snapshot sealed otherwise: the newest one sealed as this push is the parent', () => {
  // a plain, b sealed (encrypt: was on for a while), then off again: c goes on a, the plain chain.
  const plan = planPush({ requested: [c], candidates: [a, b, c], server: [...sealed(null, a), ...sealed(KEY, b)] });
  assert.deepEqual(names(plan.steps), ['a->c']);
  assert.match(plan.notes.join('\n'), /server's b is sealed under key .*using a as parent instead/);
});

test('a server that does not say how a snapshot is sealed (an older archive): a parent of a plain push, not of a sealed one', () => {
  assert.deepEqual(names(planPush({ requested: [c], candidates: [a, b, c], server: held(a, b) }).steps), ['b->c']);
  const plan = planPush({ requested: [c], candidates: [a, b, c], server: held(a, b), sealing: KEY });
  assert.deepEqual(names(plan.steps), ['full->c']);
  assert.match(plan.notes.join('\n'), /the server's b is sealed or not \(the server does not say\)/);
});

test('a snapshot the server holds, named in the future, does not make the new ones "older": they are sent, on it', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const dated = (name: string, generation: number, time: string, created: string): LocalSnapshot => ({ ...snap(name, generation), time: new Date(time), created: new Date(created) });
  const future = dated('home.20301201T000000Z', 1, '2030-12-01T00:00:00Z', '2026-12-05T22:43:00Z');
  const fresh = dated('home.20261205T224401Z', 2, '2026-12-05T22:44:01Z', '2026-12-05T22:44:01Z');
  const server = [{ uuid: future.uuid, name: future.name, takenAt: '2030-12-01T00:00:00Z' }];
  const plan = planPush({ requested: [fresh, future], candidates: [fresh, future], server, now });
  assert.deepEqual(names(plan.steps), ['home.20301201T000000Z->home.20261205T224401Z']);
  assert.deepEqual(plan.skipped, []);
  assert.match(plan.notes.join('\n'), /home\.20301201T000000Z is dated 2030-12-01T00:00:00\.000Z, .*counted as taken when btrfs made it, 2026-12-05T22:43:00\.000Z/);
  // Taken while the clock said 2030 (btrfs's Creation time says so too): no time to believe, so by generation.
  const wrongClock = { ...future, created: new Date('2030-12-01T00:00:00Z') };
  const byGeneration = planPush({ requested: [fresh, wrongClock], candidates: [fresh, wrongClock], server, now });
  assert.deepEqual(names(byGeneration.steps), ['home.20301201T000000Z->home.20261205T224401Z']);
});

test('a snapshot named in the future is sent dated as the order counts it: btrfs\'s Creation time, else no time at all', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const dated = (name: string, generation: number, time: string, created: string): LocalSnapshot => ({ ...snap(name, generation), time: new Date(time), created: new Date(created) });
  const future = dated('home.20301201T000000Z', 1, '2030-12-01T00:00:00Z', '2026-12-05T22:43:00Z');
  const fresh = dated('home.20261205T224401Z', 2, '2026-12-05T22:44:01Z', '2026-12-05T22:44:01Z');
  // Its name's 2030 would be the server's newest until 2030 (retention keeps it, status shows it newest).
  const plan = planPush({ requested: [future, fresh], candidates: [future, fresh], server: [], now });
  assert.deepEqual(names(plan.steps), ['full->home.20301201T000000Z', 'home.20301201T000000Z->home.20261205T224401Z']);
  assert.deepEqual(plan.steps.map((s) => (s.takenAt === undefined ? 'own' : (s.takenAt?.toISOString() ?? 'none'))), ['2026-12-05T22:43:00.000Z', 'own']);
  // Taken while the clock said 2030: btrfs's Creation time says 2030 too, so no time is believed, and none is sent.
  const wrongClock = { ...future, created: new Date('2030-12-01T00:00:00Z') };
  const none = planPush({ requested: [wrongClock], candidates: [wrongClock], server: [], now });
  assert.deepEqual(none.steps.map((s) => s.takenAt), [null]);
});

test('nextParent is the parent push takes for a newer snapshot, sealing and all: the newest held sealed as the push is', () => {
  // a, b plain on an archive, then encrypt: on: c in full sealed, d on it. e is new and the server lacks it.
  const server = [...sealed(null, a, b), ...sealed(KEY, c, d)];
  for (const [sealing, expected] of [[KEY, 'd'], [null, 'b'], [OTHER_KEY, null]] as const) {
    const candidates = [a, b, c, d];
    const taken = planPush({ requested: [e], candidates, server, sealing }).steps[0]!.parent?.name ?? null;
    assert.equal(taken, expected, `the plan's parent, ${sealing ?? 'plain'}`);
    assert.equal(nextParent({ candidates, server, sealing })?.name ?? null, expected, `nextParent, ${sealing ?? 'plain'}`);
  }
});

test("serverView reads a listing's sealing as push does: a btrfs server's snapshots are plain, an old archive's unknown", () => {
  const listed = (extra: object) => ({ name: 'b', uuid: b.uuid, serverUuid: 's', parentUuid: null, receivedAt: '', rawBytes: 0, wireBytes: 0, transferId: null, altered: null, ...extra });
  assert.deepEqual(serverView([listed({}), listed({ storedStream: true }), listed({ storedStream: true, sealedBy: KEY })]).map((s) => s.sealedBy), [null, undefined, KEY]);
});

test('a snapshot made after the clock was set back, named before what the server holds, is sent, with a note', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const h01 = taken('home.20261201T0100', 10, '2026-12-01T01:00:00Z');
  const h02 = taken('home.20261202T0100', 20, '2026-12-02T01:00:00Z');
  // The RTC battery died: btrfs made these after h02, and they are named in 2000.
  const x1 = taken('home.20000101T0000', 30, '2000-01-01T00:00:00Z');
  const x2 = taken('home.20000101T0100', 40, '2000-01-01T01:00:00Z');
  const plan = planPush({ requested: [h01, h02, x1, x2], candidates: [h01, h02], server: held(h01, h02), now });
  assert.deepEqual(plan.skipped, []);
  assert.deepEqual(names(plan.steps), ['home.20261202T0100->home.20000101T0000', 'home.20000101T0000->home.20000101T0100']);
  assert.equal(plan.notes.length, 2, plan.notes.join('\n'));
  assert.match(plan.notes[0]!, /home\.20000101T0000 is dated 2000-01-01T00:00:00\.000Z, before home\.20261202T0100 .*was the clock set back\?/);
  // The server is told they were taken no earlier than h02 (its retention would count them the oldest of all, and
  // delete the newest backups first); a step the order does not move carries no time of its own.
  assert.deepEqual(plan.steps.map((s) => s.takenAt?.toISOString()), ['2026-12-02T01:00:00.000Z', '2026-12-02T01:00:00.000Z']);
  const plain = planPush({ requested: [h01, h02], candidates: [], server: [], now });
  assert.deepEqual(plain.steps.map((s) => s.takenAt), [undefined, undefined]);
  // Once sent, the server's newest is x2, and the next snapshot (the clock right again) goes on it.
  const h07 = taken('home.20261207T0100', 50, '2026-12-07T01:00:00Z');
  const next = planPush({ requested: [h07], candidates: [h01, h02, x1, x2], server: held(h01, h02, x1, x2), now: new Date('2026-12-07T02:00:00Z') });
  assert.deepEqual(names(next.steps), ['home.20000101T0100->home.20261207T0100']);
  assert.deepEqual(nextParent({ candidates: [h01, h02, x1, x2], server: held(h01, h02, x1, x2), sealing: null, now })?.name, x2.name);
});
