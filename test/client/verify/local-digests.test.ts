/** The client's saved digests (client/verify/local-digests.ts): which one a new digest starts from. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { LocalSnapshot } from '../../../core/plan.ts';
import { digestTree } from '../../../core/tree-digest/index.ts';
import { LocalDigests } from '../../../client/verify/local-digests.ts';

const uuid = (i: number) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`;
const snap = (name: string, i: number, generation: number, time: string | null, received = false): LocalSnapshot => ({
  name, path: `/snaps/${name}`, uuid: uuid(i), localUuid: received ? uuid(500 + i) : uuid(i), origin: null, generation, created: null, time: time === null ? null : new Date(time),
});

test('a new digest starts from the newest older snapshot by when each was taken, not by generation (a restore is newest by that)', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-local-digests-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const tree = path.join(dir, 'tree');
  await fs.mkdir(tree);
  await fs.writeFile(path.join(tree, 'f'), 'x');
  const digested = await digestTree(tree);
  const cache = new LocalDigests(path.join(dir, 'cache'));

  const old = snap('home.20261201T0100', 1, 10, '2026-12-01T01:00:00Z');
  // Deleted here, restored from the server: taken the 4th, received after the 5th's snapshot was made.
  const restored = snap('home.20261204T0100', 4, 40, '2026-12-04T01:00:00Z', true);
  const target = snap('home.20261205T0100', 5, 30, '2026-12-05T01:00:00Z');
  for (const s of [old, restored]) await cache.save('home', s, digested, null);
  const got = await cache.previous('home', target, [old, restored, target]);
  assert.equal(got?.from, restored.name);
  // Its own digest first; and one taken before all the others (restored too) has none older, whatever its generation.
  assert.equal((await cache.previous('home', restored, [old, restored, target]))?.from, 'this snapshot');
  assert.equal(await cache.previous('home', snap('home.20261130T0100', 9, 50, '2026-11-30T01:00:00Z', true), [old, restored, target]), null);
  // A restored snapshot whose name has no time is dated by the server's takenAt, as for push.
  const undated = { ...restored, name: 'manual', time: null };
  assert.equal((await cache.previous('home', target, [old, undated, target], [{ uuid: undated.uuid, takenAt: '2026-12-04T01:00:00Z' }]))?.from, 'manual');
});
