/**
 * Which entries of a folder a receive added, as a pure rule (core/receive/added-entries.ts): by identity, so a
 * renamed entry that was there before is not one, and never a name the caller says others hold.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { addedEntries } from '../../core/receive/added-entries.ts';

const entry = (name: string, id: string) => ({ name, id });

test('added: what is new by identity, whatever its name; never a name others hold, new or not', () => {
  const before = new Set(['1:1', '2:2']);
  const now = [entry('admin', '1:1'), entry('renamed-admin', '2:2'), entry('stray', '3:3'), entry('home', '4:4'), entry('.incoming-other', '5:5')];
  assert.deepEqual(addedEntries(now, before, []).map((e) => e.name), ['stray', 'home', '.incoming-other']);
  assert.deepEqual(addedEntries(now, before, ['home', '.incoming-other']).map((e) => e.name), ['stray']);
  // Same name, another identity: a subvolume deleted and made again while the receive ran is new.
  assert.deepEqual(addedEntries([entry('admin', '9:9')], before, []).map((e) => e.name), ['admin']);
});
