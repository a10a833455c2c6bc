import { test } from 'node:test';
import assert from 'node:assert/strict';
import { localProtections } from '../../../client/run/prune.ts';
import type { OwnSnapshot } from '../../../client/local/take.ts';
import type { Snapshot, Transfer, TransferState } from '../../../core/protocol.ts';

const own = (name: string, i: number): OwnSnapshot => ({
  name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `uuid-${name}`, origin: 'src', generation: i, created: null, time: new Date(Date.UTC(2026, 0, i)),
});
const [a, b, c, d, e] = ['a', 'b', 'c', 'd', 'e'].map((n, i) => own(n, i + 1)) as [OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot, OwnSnapshot];
const held = (...s: OwnSnapshot[]) => ({ snapshots: s.map((x) => ({ uuid: x.uuid, name: x.name }) as Snapshot) });
const transfer = (id: string, volume: string, state: TransferState, snap: OwnSnapshot, parent: OwnSnapshot | null) =>
  ({ id, volume, state, uuid: snap.uuid, parentUuid: parent?.uuid ?? null }) as Transfer;

test('the newest snapshot both sides hold and everything newer are protected; older ones are not', () => {
  const p = localProtections([a, b, c, d, e], held(a, c), [], 'home');
  assert.deepEqual([...p.keys()], ['c', 'd', 'e']);
  assert.match(p.get('c')!, /newest snapshot both sides hold/);
  assert.equal(p.get('d'), 'not on the server yet');
});

test('with nothing in common, nothing is on the server yet: all are protected', () => {
  const p = localProtections([a, b], held(), [], 'home');
  assert.deepEqual([...p.keys()], ['a', 'b']);
});

test("an upload in progress protects its snapshot and its parent; finished ones and other volumes' do not", () => {
  const p = localProtections([a, b, c, d, e], held(a, b, c, d, e), [
    transfer('t1', 'home', 'uploading', e, a),
    transfer('t2', 'home', 'received', d, b),
    transfer('t3', 'other', 'uploading', d, c),
    transfer('t4', 'home', 'receiving', b, null),
  ], 'home');
  assert.deepEqual([...p.keys()].sort(), ['a', 'b', 'e']);
  assert.equal(p.get('a'), 'parent of transfer t1 in progress (uploading)');
  assert.equal(p.get('b'), 'being sent (transfer t4, receiving)');
  assert.equal(p.get('e'), 'newest snapshot both sides hold: the parent of the next incremental; being sent (transfer t1, uploading)');
});
