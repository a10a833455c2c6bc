import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planPush, type LocalSnapshot } from '../../core/plan.ts';

const snap = (name: string, generation: number, origin: string | null = 'src'): LocalSnapshot => ({
  name,
  path: `/snaps/${name}`,
  uuid: `uuid-${name}`,
  origin,
  generation,
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
