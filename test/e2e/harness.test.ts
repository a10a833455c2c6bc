// The e2e harness's own take-down (harness.ts createPair): a test's filesystems come down without waiting.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lazyUnmountCount, rootOnly } from '../fixtures/btrfs.ts';
import { createPair } from './harness.ts';

test('a pair whose server still runs when its test ends is taken down server first: no filesystem is left busy, none unmounted lazily', rootOnly, async (t) => {
  const before = lazyUnmountCount();
  let mounts: string[] = [];
  await t.test('a test that leaves its server running', async (st) => {
    const pair = await createPair(st, { fillMB: 1 });
    const server = await pair.startServer();
    // Files held open under the root, as a server that received something holds them.
    assert.equal((await fetch(`${server.url}/v1/status`)).status, 200);
    mounts = [pair.client.mountPoint, pair.server.mountPoint];
  });
  assert.equal(mounts.length, 2);
  assert.equal(lazyUnmountCount() - before, 0, 'a filesystem was still busy after 20 tries to unmount it');
});
