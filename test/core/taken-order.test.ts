/** core/taken-order.ts: snapshots by when they were taken; generation breaks ties, and stands in when a time is missing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { takenOrder } from '../../core/taken-order.ts';

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
