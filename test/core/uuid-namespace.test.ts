/**
 * A client knows its snapshot again in a listing whose UUID the server lost (Snapshot.uuidUnknown: the server
 * rebuilt its catalog from the disk, where only the namespaced Received UUID is left).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { namespacedUuid, withClientUuids } from '../../core/uuid-namespace.ts';

const mine = '434d0b3e-3a51-4f4e-9a6b-1f2e3d4c5b6a';
const other = '0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0';

test('withClientUuids gives an unknown UUID back only to the client whose namespace it is in', () => {
  const listed = [
    { name: 'a', uuid: namespacedUuid('alice', mine), uuidUnknown: true as const },
    { name: 'b', uuid: other },
  ];
  assert.deepEqual(withClientUuids(listed, 'alice', [mine, other]), [{ name: 'a', uuid: mine }, { name: 'b', uuid: other }]);
  // Another client's name, or none of the client's UUIDs: left as listed, flagged.
  assert.deepEqual(withClientUuids(listed, 'bob', [mine]), listed);
  assert.deepEqual(withClientUuids(listed, 'alice', [other]), listed);
  // An older server names no client: nothing to match against.
  assert.deepEqual(withClientUuids(listed, undefined, [mine]), listed);
  // Case does not matter: btrfs prints lower case, but a UUID is a UUID.
  assert.equal(namespacedUuid('alice', mine.toUpperCase()), namespacedUuid('alice', mine));
});
