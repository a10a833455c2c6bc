/**
 * The PATCH size a push uses (client/push/push.ts patchBytesFor): what the server's snapshot list asks for, within
 * what the client will hold, and its own default where an older server says nothing. No root needed.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { patchBytesFor } from '../../../client/push/push.ts';
import { PATCH_BYTES_MAX, PATCH_BYTES_MIN } from '../../../core/protocol.ts';

const MiB = 1024 * 1024;

test('a push takes the PATCH size the server asks for, held within 1..32 MiB whatever it asks', () => {
  assert.equal(patchBytesFor(16 * MiB), 16 * MiB);
  assert.equal(patchBytesFor(8 * MiB), 8 * MiB);
  // A server cannot make the client hold a gigabyte in flight, nor send in slivers.
  assert.equal(patchBytesFor(1024 * MiB), PATCH_BYTES_MAX);
  assert.equal(patchBytesFor(1), PATCH_BYTES_MIN);
  fc.assert(
    fc.property(fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER }), (asked) => {
      const used = patchBytesFor(asked);
      assert.ok(used >= PATCH_BYTES_MIN && used <= PATCH_BYTES_MAX);
      if (asked >= PATCH_BYTES_MIN && asked <= PATCH_BYTES_MAX) assert.equal(used, asked);
    }),
  );
});

test("where an older server says nothing, a push sends what a btrfs server asks for", () => {
  assert.equal(patchBytesFor(undefined), 8 * MiB);
});
