import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localProtections } from '../../../client/run/prune.ts';
import type { OwnSnapshot } from '../../../client/local/take.ts';
import type { Snapshot, Transfer, TransferState } from '../../../core/protocol.ts';
import { planRetention } from '../../../core/retention.ts';

const now = new Date('2026-12-06T00:00:00Z');

const own = (name: string, i: number): OwnSnapshot => ({
  name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `uuid-${name}`, origin: 'src', generation: i, created: null, time: new Date(Date.UTC(2026, 0, i)),
});
const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n, i) => own(n, i + 1)) as [OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot];
const held = (...s: OwnSnapshot[]) => ({ snapshots: s.map((x) => ({ uuid: x.uuid, name: x.name }) as Snapshot) });
const transfer = (id: string, volume: string, state: TransferState, snap: OwnSnapshot, parent: OwnSnapshot | null) =>
  ({ id, volume, state, uuid: snap.uuid, parentUuid: parent?.uuid ?? null }) as Transfer;

test('the newest snapshot both sides hold and everything newer are protected; older ones are not', () => {
  const p = localProtections([a, b, c, d, e], held(a, c), [], { volume: 'home', now, sealing: null });
  assert.deepEqual([...p.keys()], ['c', 'd', 'e']);
  assert.match(p.get('c')!, /newest snapshot both sides hold/);
  assert.equal(p.get('d'), 'not on the server yet');
});

test('with nothing in common, nothing is on the server yet: all are protected', () => {
  const p = localProtections([a, b], held(), [], { volume: 'home', now, sealing: null });
  assert.deepEqual([...p.keys()], ['a', 'b']);
});

test("an upload in progress protects its snapshot and its parent; finished ones and other volumes' do not", () => {
  const p = localProtections([a, b, c, d, e], held(a, b, c, d, e), [
    transfer('t1', 'home', 'uploading', e, a),
    transfer('t2', 'home', 'received', d, b),
    transfer('t3', 'other', 'uploading', d, c),
    transfer('t4', 'home', 'receiving', b, null),
  ], { volume: 'home', now, sealing: null });
  assert.deepEqual([...p.keys()].sort(), ['a', 'b', 'e']);
  assert.equal(p.get('a'), 'parent of transfer t1 in progress (uploading)');
  assert.equal(p.get('b'), 'being sent (transfer t4, receiving)');
  assert.equal(p.get('e'), 'newest snapshot both sides hold: the parent of the next incremental; being sent (transfer t1, uploading)');
});

/** A snapshot named by the time in `name`, made by btrfs at `created` as the `generation`-th. */
const named = (name: string, generation: number, created: string): OwnSnapshot => ({
  name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `uuid-${name}`, origin: 'src', generation, created: new Date(created),
  time: new Date(`${name.slice(5, 9)}-${name.slice(9, 11)}-${name.slice(11, 13)}T${name.slice(14, 16)}:${name.slice(16, 18)}:${name.slice(18, 20)}Z`),
});
const deletedBy = (own: OwnSnapshot[], protect: Map<string, string>, last: number) =>
  planRetention(own.map((s) => ({ name: s.name, time: s.time })), { last }, protect, now).delete.map((d) => d.name);

test('a pushed snapshot named in the future does not make the unpushed ones after it "older": they stay', () => {
  // The tester's case: home.20301201T000000Z made (and pushed) on 5 December, then two snapshots the server lacks.
  const future = named('home.20301201T000000Z', 1, '2026-12-05T22:43:00Z');
  const first = named('home.20261205T224401Z', 2, '2026-12-05T22:44:01Z');
  const second = named('home.20261205T224403Z', 3, '2026-12-05T22:44:03Z');
  const p = localProtections([first, second, future], held(future), [], { volume: 'home', now, sealing: null });
  assert.equal(p.get(first.name), 'not on the server yet');
  assert.equal(p.get(second.name), 'not on the server yet');
  assert.match(p.get(future.name)!, /parent of the next incremental/);
  assert.deepEqual(deletedBy([first, second, future], p, 1), []);
});

test('a snapshot the server lacks, named before the ones it holds (a clock set back) but made after them, stays', () => {
  const old = named('home.20261201T000000Z', 1, '2026-12-01T00:00:00Z');
  const pushed = named('home.20261202T000000Z', 2, '2026-12-02T00:00:00Z');
  const setBack = named('home.20000102T000000Z', 3, '2000-01-02T00:00:00Z');
  const p = localProtections([setBack, old, pushed], held(old, pushed), [], { volume: 'home', now, sealing: null });
  // Push's order counts it newer than those (btrfs made it after them), so push sends it: the plan keeps it.
  assert.equal(p.get(setBack.name), 'not on the server yet');
  assert.deepEqual(deletedBy([setBack, old, pushed], p, 1), [old.name]);
});

test("one the server dropped (its own retention) is the policy's to delete: older by time and by generation", () => {
  const dropped = named('home.20261201T000000Z', 1, '2026-12-01T00:00:00Z');
  const kept = named('home.20261202T000000Z', 2, '2026-12-02T00:00:00Z');
  const p = localProtections([dropped, kept], held(kept), [], { volume: 'home', now, sealing: null });
  assert.deepEqual([...p.keys()], [kept.name]);
});

test("the server's altered snapshot is not the next parent: the newest intact one both hold is kept instead", () => {
  const r = [1, 2, 3, 4, 5, 6].map((i) => named(`home.2026120${i}T000000Z`, i, `2026-12-0${i}T00:00:00Z`)) as [OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot];
  const [, , , r4, r5, r6] = r;
  const server = { snapshots: [{ uuid: r4.uuid, name: r4.name } as Snapshot, { uuid: r5.uuid, name: r5.name, altered: { foundAt: '2026-12-05T00:00:00Z', what: ['not_read_only' as const] } } as Snapshot] };
  const p = localProtections(r, server, [], { volume: 'home', now, sealing: null });
  assert.equal(p.get(r4.name), 'newest snapshot both sides hold that the server has not altered: the parent of the next incremental');
  assert.equal(p.get(r6.name), 'not on the server yet');
  // The server's copy of r5 is not what was sent: the local one is the only copy as sent.
  assert.equal(p.get(r5.name), "the server's copy was changed by hand after it was received (not_read_only): this is the only copy as sent");
  assert.ok(!deletedBy(r, p, 1).includes(r5.name));
  assert.ok(!deletedBy(r, p, 1).includes(r4.name));
});

test("an archive's full chain is its own rule, not a change by hand: that snapshot is the policy's", () => {
  const r = [1, 2, 3].map((i) => named(`home.2026120${i}T000000Z`, i, `2026-12-0${i}T00:00:00Z`)) as [OwnSnapshot, OwnSnapshot, OwnSnapshot];
  const [r1, r2, r3] = r;
  const full = { foundAt: '2026-12-02T00:00:00Z', what: ['chain_full' as const] };
  const server = { snapshots: [{ uuid: r1.uuid, name: r1.name, altered: full } as Snapshot, { uuid: r2.uuid, name: r2.name, altered: full } as Snapshot, { uuid: r3.uuid, name: r3.name } as Snapshot] };
  const p = localProtections(r, server, [], { volume: 'home', now, sealing: null });
  assert.deepEqual([...p.keys()], [r3.name]);
});

test('with encrypt: turned on after a plain chain, the sealed parent push takes is kept, not the newest plain one', () => {
  // An archive server: a and b pushed plain, then encrypt: on, so c went in full sealed and d on c; e is new here.
  const KEY = '0123456789abcdef';
  const stored = (by: string | null, ...s: OwnSnapshot[]) => s.map((x) => ({ uuid: x.uuid, name: x.name, storedStream: true, sealedBy: by }) as Snapshot);
  const server = { snapshots: [...stored(null, a, b), ...stored(KEY, c, d)] };
  const p = localProtections([a, b, c, d, e], server, [], { volume: 'home', now, sealing: KEY });
  assert.equal(p.get('d'), 'newest snapshot both sides hold: the parent of the next incremental');
  assert.equal(p.has('b'), false, 'the plain chain is no parent of a sealed push');
  assert.deepEqual(deletedBy([a, b, c, d, e], p, 1), ['a', 'b', 'c']);
  // Plain again (encrypt: turned off): the plain chain's newest is the parent, and the reason says why not d.
  const plain = localProtections([a, b, c, d, e], server, [], { volume: 'home', now, sealing: null });
  assert.equal(plain.get('b'), 'newest snapshot both sides hold that is plain (no encrypt:), as push seals: the parent of the next incremental');
  assert.equal(plain.has('d'), false);
});

test('a parent the server refused as changed here (parent_changed) is not the one kept as the next parent: the one push takes instead is', () => {
  const refused = { ...transfer('t5', 'home', 'failed', e, d), error: { code: 'parent_changed', message: 'd changed', at: '2026-12-05T00:00:00Z' } } as Transfer;
  const p = localProtections([a, b, c, d, e], held(a, b, c, d), [refused], { volume: 'home', now, sealing: null });
  assert.equal(p.has('d'), false, 'no incremental can build on d: keeping it for that keeps nothing');
  assert.equal(p.get('c'), 'newest snapshot both sides hold that was not changed here after it was sent: the parent of the next incremental');
  assert.equal(p.get('e'), 'not on the server yet');
  // Another volume's refusal changes nothing here.
  const other = localProtections([a, b, c, d, e], held(a, b, c, d), [{ ...refused, volume: 'mail' }], { volume: 'home', now, sealing: null });
  assert.match(other.get('d')!, /^newest snapshot both sides hold: the parent/);
  assert.equal(other.has('c'), false);
});

test("the next parent is the one push takes among every snapshot it plans on, not only run's own: a newer one taken by hand is that parent", () => {
  // a and c are run's (VOLUME.<time>); h, taken by hand in btrbk's form between them and pushed, is newer than a,
  // and push plans on it as on a (client/push/plan-facts.ts): the next incremental is from h, not a.
  const h = { ...own('home.20260102T1200', 2), time: new Date('2026-01-02T12:00:00Z') };
  const p = localProtections([a, c], held(a, h), [], { volume: 'home', now, sealing: null, sends: [a, h, c] });
  assert.equal(p.has('a'), false, `a is not the next parent: ${p.get('a')}`);
  assert.equal(p.get('c'), 'not on the server yet');
  assert.equal(p.has(h.name), false, 'only run\'s own snapshots are its to keep or delete');
  // One the push would send from the folder, taken by hand, keeps its parent among run's own.
  const unsent = localProtections([a, c], held(a), [], { volume: 'home', now, sealing: null, sends: [a, h, c] });
  assert.equal(unsent.get('a'), 'newest snapshot both sides hold: the parent of the next incremental');
});
