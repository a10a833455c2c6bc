/** client/push/upload-metadata.ts, pure: what a new upload tells the server, the stream's ctransids among it. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { metadataFor } from '../../../client/push/upload-metadata.ts';
import { META } from '../../../core/protocol.ts';
import type { SafeName } from '../../../core/names.ts';
import type { LocalSnapshot } from '../../../core/plan.ts';

const snap = (name: string, over: Partial<LocalSnapshot> = {}): LocalSnapshot =>
  ({ name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `uuid-${name}`, origin: 'src', generation: 1, created: null, time: null, ...over });
const VOLUME = 'home' as SafeName;

test('the stream\'s first command\'s ctransids: the snapshot\'s always, the parent\'s now for an incremental (what an archive judges a sealed stream by)', () => {
  const full = metadataFor(VOLUME, { snapshot: snap('s1'), parent: null }, 65536, 'v1', { kind: 'subvol', ctransid: 40 });
  assert.equal(full[META.ctransid], '40');
  assert.equal(META.parentCtransid in full, false);
  const incremental = metadataFor(VOLUME, { snapshot: snap('s2'), parent: snap('s1') }, 65536, 'v1', { kind: 'snapshot', ctransid: 41, cloneCtransid: 12 });
  assert.deepEqual([incremental[META.parentUuid], incremental[META.ctransid], incremental[META.parentCtransid]], ['uuid-s1', '41', '12']);
  assert.equal(META.parentReceived in incremental, false);
  const onRestored = metadataFor(VOLUME, { snapshot: snap('s2'), parent: snap('s1', { localUuid: 'uuid-copy' }) }, 65536, 'v1', { kind: 'snapshot', ctransid: 41, cloneCtransid: 99 });
  assert.equal(onRestored[META.parentReceived], '1', 'a received copy: its ctransid is its own, and not judged');
});
