/** core/taken-order.ts: snapshots by when they were taken; generation breaks ties, and stands in when a time is missing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { misdated, takenOrder, takenTime } from '../../core/taken-order.ts';

const s = (name: string, generation: number, iso: string | null) => ({ name, uuid: `uuid-${name}`, generation, time: iso === null ? null : new Date(iso) });

test('by time taken, whatever the generations say', () => {
  const list = [s('new', 1, '2026-12-05T12:00:00Z'), s('old', 9, '2026-12-05T10:00:00Z')];
  assert.deepEqual([...list].sort(takenOrder(list)).map((x) => x.name), ['old', 'new']);
});

test('taken in the same second: by generation, then by name', () => {
  const list = [s('b', 2, '2026-12-05T10:00:00Z'), s('c', 1, '2026-12-05T10:00:00Z'), s('a', 2, '2026-12-05T10:00:00Z')];
  assert.deepEqual([...list].sort(takenOrder(list)).map((x) => x.name), ['c', 'a', 'b']);
});

test("the server's takenAt dates a snapshot that has no time here; an unreadable one does not", () => {
  const list = [s('restored', 9, null), s('own', 5, '2026-12-05T11:00:00Z')];
  const order = takenOrder(list, [{ uuid: 'uuid-restored', takenAt: '2026-12-05T10:00:00Z' }]);
  assert.deepEqual([...list].sort(order).map((x) => x.name), ['restored', 'own']);
  const garbled = takenOrder(list, [{ uuid: 'uuid-restored', takenAt: 'yesterday' }]);
  assert.deepEqual([...list].sort(garbled).map((x) => x.name), ['own', 'restored'], 'by generation');
});

test("a snapshot's own time wins over the server's", () => {
  const list = [s('a', 1, '2026-12-05T12:00:00Z'), s('b', 2, '2026-12-05T11:00:00Z')];
  const order = takenOrder(list, [{ uuid: 'uuid-a', takenAt: '2026-12-05T10:00:00Z' }]);
  assert.deepEqual([...list].sort(order).map((x) => x.name), ['b', 'a']);
});

test('one snapshot dated by nothing: all by generation, an order sort() can rely on', () => {
  const list = [s('a', 1, '2026-12-05T12:00:00Z'), s('b', 2, null), s('c', 3, '2026-12-05T10:00:00Z')];
  const order = takenOrder(list);
  assert.deepEqual([...list].sort(order).map((x) => x.name), ['a', 'b', 'c']);
  assert.ok(order(list[0]!, list[2]!) < 0 && order(list[2]!, list[0]!) > 0);
});

test('a time after now, or after btrfs made the snapshot, by more than a day is not believed: its Creation time is', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const made = (name: string, generation: number, iso: string, created: string | null, received = false) =>
    ({ ...s(name, generation, iso), created: created === null ? null : new Date(created), localUuid: received ? `local-${name}` : `uuid-${name}` });
  const future = made('future', 1, '2030-12-01T00:00:00Z', '2026-12-05T10:00:00Z');
  const real = made('real', 2, '2026-12-05T11:00:00Z', '2026-12-05T11:00:00Z');
  assert.deepEqual(takenTime(future, now), new Date('2026-12-05T10:00:00Z'));
  assert.deepEqual([future, real].sort(takenOrder([future, real], [], now)).map((x) => x.name), ['future', 'real']);
  // Before btrfs made it: a name typed by hand, whatever the clock says now.
  assert.deepEqual(takenTime(made('ahead', 1, '2026-12-05T00:00:00Z', '2026-12-01T00:00:00Z'), now), new Date('2026-12-01T00:00:00Z'));
  // Within the day's slack (a zone read wrong, a clock a little off): believed.
  assert.deepEqual(takenTime(made('skew', 1, '2026-12-06T12:00:00Z', '2026-12-06T02:00:00Z'), now), new Date('2026-12-06T12:00:00Z'));
  // Its Creation time in the future too, or a received one's (the receive's): no time, so all by generation.
  assert.equal(takenTime(made('clock', 1, '2030-12-01T00:00:00Z', '2030-12-01T00:00:00Z'), now), null);
  assert.equal(takenTime(made('recv', 1, '2030-12-01T00:00:00Z', '2026-12-05T00:00:00Z', true), now), null);
  assert.deepEqual(misdated([future, real], now), [{ name: 'future', time: new Date('2030-12-01T00:00:00Z'), instead: new Date('2026-12-05T10:00:00Z') }]);
});

test("the server's takenAt after now is not believed either", () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const list = [s('restored', 9, null), s('own', 5, '2026-12-05T11:00:00Z')];
  const order = takenOrder(list, [{ uuid: 'uuid-restored', takenAt: '2030-12-01T00:00:00Z' }], now);
  assert.deepEqual([...list].sort(order).map((x) => x.name), ['own', 'restored'], 'by generation');
});
