/** client/push/changed-parent.ts, pure: which parents the server refused as changed here, and the line push says. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { aroundChangedNote, changedParentsOf } from '../../../client/push/changed-parent.ts';
import type { LocalSnapshot, PlanStep } from '../../../core/plan.ts';
import type { Transfer } from '../../../core/protocol.ts';

const snap = (name: string): LocalSnapshot => ({ name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `uuid-${name}`, origin: 'src', generation: 1, created: null, time: null });

const transfer = (over: Partial<Transfer>): Transfer =>
  ({ id: 'x', client: 'c', volume: 'home', snapshot: 's', uuid: 'u', parentUuid: 'uuid-p', state: 'failed', error: null, ...over }) as Transfer;

test('the parents of failed transfers refused as parent_changed in this volume, and no others', () => {
  const refused = { code: 'parent_changed', message: 'm', at: '2026-12-06T00:00:00Z' };
  const changed = changedParentsOf(
    [
      transfer({ error: refused }),
      transfer({ parentUuid: 'uuid-other-volume', volume: 'mail', error: refused }),
      transfer({ parentUuid: 'uuid-cannot-apply', error: { ...refused, code: 'sendstream_cannot_apply' } }),
      transfer({ parentUuid: 'uuid-received', state: 'received' }),
    ],
    'home',
  );
  assert.deepEqual([...changed], ['uuid-p']);
});

test('one line naming the parent, and what is sent instead', () => {
  const was: PlanStep = { snapshot: snap('S'), parent: snap('P') };
  assert.equal(
    aroundChangedNote(was, { snapshot: snap('S'), parent: null }),
    "S: not sent on P: P on this machine was changed after it was sent, and an incremental on it would leave the server's copy different (parent_changed); sending it in full instead",
  );
  assert.match(aroundChangedNote(was, { snapshot: snap('S'), parent: snap('O') }), /; sending it on O instead$/);
});
