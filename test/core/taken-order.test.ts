/** core/taken-order.ts: snapshots by when they were taken; generation breaks ties, and stands in when a time is missing. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { madeAfter, madeAfterNote, misdated, takenOrder, takenTime } from '../../core/taken-order.ts';

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

// A clock set back (a dead RTC battery): new snapshots are named and dated in the past. btrfs's generation orders
// what it made on this filesystem, and a snapshot made here (not received) was taken when it was made.
const here = (name: string, generation: number, iso: string) => ({ ...s(name, generation, iso), localUuid: `uuid-${name}` });
const received = (name: string, generation: number, iso: string) => ({ ...s(name, generation, iso), localUuid: `local-${name}` });

test('a snapshot btrfs made here after others, dated before them (a clock set back), is newer than all of them', () => {
  const now = new Date('2026-12-06T00:00:00Z');
  const [h1, h2] = [here('h1', 10, '2026-12-01T00:00:00Z'), here('h2', 20, '2026-12-02T00:00:00Z')];
  const [x1, x2] = [here('x1', 30, '2000-01-01T00:00:00Z'), here('x2', 40, '2000-01-02T00:00:00Z')];
  const list = [x2, h2, x1, h1];
  const server = [h1, h2].map((h) => ({ uuid: h.uuid, takenAt: h.time!.toISOString() }));
  assert.deepEqual([...list].sort(takenOrder(list, server, now)).map((x) => x.name), ['h1', 'h2', 'x1', 'x2']);
  assert.deepEqual(madeAfter(list, server, now), [
    { name: 'x1', time: new Date('2000-01-01T00:00:00Z'), after: 'h2', at: new Date('2026-12-02T00:00:00Z') },
    { name: 'x2', time: new Date('2000-01-02T00:00:00Z'), after: 'h2', at: new Date('2026-12-02T00:00:00Z') },
  ]);
  assert.match(madeAfterNote(madeAfter(list, server, now)[0]!), /x1 is dated 2000-01-01T00:00:00\.000Z, before h2 .*was the clock set back\?/);
  // The clock put right again: a snapshot with a true time goes by it, after those.
  const x3 = here('x3', 50, '2026-12-05T00:00:00Z');
  assert.deepEqual([x3, ...list].sort(takenOrder([x3, ...list], server, now)).map((x) => x.name), ['h1', 'h2', 'x1', 'x2', 'x3']);
});

test('made after a snapshot received here, a snapshot is newer than it too: that one was taken before it arrived', () => {
  const restored = received('restored', 10, '2026-12-03T00:00:00Z');
  const setBack = here('set-back', 20, '2000-01-01T00:00:00Z');
  assert.deepEqual([setBack, restored].sort(takenOrder([setBack, restored])).map((x) => x.name), ['restored', 'set-back']);
});

test("a received snapshot's age is never moved by its generation (a restore is as old as when it was taken)", () => {
  const [older, newer] = [here('older', 10, '2026-12-01T00:00:00Z'), here('newer', 20, '2026-12-02T00:00:00Z')];
  const restored = received('restored', 30, '2026-12-01T12:00:00Z');
  const list = [restored, newer, older];
  assert.deepEqual([...list].sort(takenOrder(list)).map((x) => x.name), ['older', 'restored', 'newer']);
  assert.deepEqual(madeAfter(list), []);
  // Without a local UUID (not known to be made here), nothing moves either.
  const bare = [s('a', 10, '2026-12-02T00:00:00Z'), s('b', 20, '2026-12-01T00:00:00Z')];
  assert.deepEqual([...bare].sort(takenOrder(bare)).map((x) => x.name), ['b', 'a']);
});

test('the order stays an order (antisymmetric, transitive) whatever the times, generations and origins', () => {
  const snapshot = fc.record({ generation: fc.integer({ min: 1, max: 8 }), day: fc.integer({ min: 1, max: 6 }), received: fc.boolean() });
  fc.assert(fc.property(fc.array(snapshot, { maxLength: 10 }), (specs) => {
    const list = specs.map((x, i) => (x.received ? received : here)(`s${i}`, x.generation, `2026-12-0${x.day}T00:00:00Z`));
    const order = takenOrder(list, [], new Date('2026-12-06T00:00:00Z'));
    const sorted = [...list].sort(order);
    for (let i = 0; i < sorted.length; i++) {
      for (let j = i + 1; j < sorted.length; j++) {
        assert.ok(order(sorted[i]!, sorted[j]!) <= 0 && order(sorted[j]!, sorted[i]!) >= 0, `${sorted[i]!.name} before ${sorted[j]!.name}`);
      }
    }
    // What btrfs made here comes in the order it made them.
    const made = sorted.filter((x) => x.localUuid === x.uuid).map((x) => x.generation);
    assert.deepEqual(made, [...made].sort((a, b) => a - b));
  }));
});
