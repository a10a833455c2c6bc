// What a push does about the transfer of its own client that holds the volume (client/push/busy-volume.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalSnapshot, PlanStep } from '../../../core/plan.ts';
import type { Transfer } from '../../../core/protocol.ts';
import { judgeBusy, waitNote } from '../../../client/push/busy-volume.ts';

const snap = (name: string, uuid: string): LocalSnapshot => ({ name, uuid, path: `/snaps/${name}` }) as unknown as LocalSnapshot;
const S1 = snap('s1', '11111111-1111-4111-8111-111111111111');
const S2 = snap('s2', '22222222-2222-4222-8222-222222222222');
const step: PlanStep = { snapshot: S2, parent: null };
const busy = (over: Partial<Transfer> = {}): Transfer =>
  ({ id: 'f'.repeat(32), snapshot: 's1', uuid: S1.uuid, parentUuid: null, state: 'uploading', ...over }) as Transfer;

test('an upload whose snapshot is gone here, or whose parent is gone from the server, is ended', () => {
  assert.equal(judgeBusy(step, { transfer: busy(), local: null, parentHeld: true }).kind, 'end');
  assert.equal(judgeBusy(step, { transfer: busy({ parentUuid: 'p' }), local: S1, parentHeld: false }).kind, 'end');
});

test('an upload of another snapshot this machine has is sent first; its own, or one being received, is waited for', () => {
  assert.deepEqual(judgeBusy(step, { transfer: busy(), local: S1, parentHeld: true }), { kind: 'sendFirst', transfer: busy(), snapshot: S1 });
  assert.equal(judgeBusy(step, { transfer: busy({ uuid: S2.uuid }), local: S2, parentHeld: true }).kind, 'wait');
  assert.equal(judgeBusy(step, { transfer: busy({ state: 'receiving' }), local: null, parentHeld: false }).kind, 'wait');
  assert.equal(judgeBusy(step, { transfer: null, local: null, parentHeld: true }).kind, 'wait');
});

test('an upload a push holds right now is waited for, never ended, whatever this machine lacks', () => {
  const held = busy({ heldByPush: true });
  assert.deepEqual(judgeBusy(step, { transfer: held, local: null, parentHeld: true }), { kind: 'wait', transfer: held, elsewhere: true });
  assert.deepEqual(judgeBusy(step, { transfer: held, local: S1, parentHeld: false }), { kind: 'wait', transfer: held, elsewhere: false });
  assert.deepEqual(judgeBusy(step, { transfer: held, local: null, parentHeld: false }), { kind: 'wait', transfer: held, elsewhere: true });
  // What it was before the fact: a server that does not say it, or says nobody holds it.
  assert.equal(judgeBusy(step, { transfer: busy({ heldByPush: false }), local: null, parentHeld: true }).kind, 'end');
  assert.equal(judgeBusy(step, { transfer: busy({ heldByPush: false, parentUuid: 'p' }), local: S1, parentHeld: false }).kind, 'end');
  // One this machine has is sent first, as before (it waits on the upload's lease there, transfer_locked).
  assert.equal(judgeBusy(step, { transfer: held, local: S1, parentHeld: true }).kind, 'sendFirst');
});

test('a wait for a push on another machine says it sends right now, the likely misuse, and snapferry abort', () => {
  const note = waitNote(step, { kind: 'wait', transfer: busy({ heldByPush: true }), elsewhere: true }, 2);
  assert.match(note, /^s2: transfer f{32} of s1 holds the volume: another push of this client is sending it right now, from a machine that has s1 \(not this one: do two machines push this volume under one client name\?\); `snapferry abort f{32}` ends it; trying again in 2\.0 s$/);
  assert.match(waitNote(step, { kind: 'wait', transfer: busy({ heldByPush: true }), elsewhere: false }, 2), /another push of this client is sending it right now; `snapferry abort f{32}` ends it/);
});

test('a wait for another push names the transfer and snapferry abort', () => {
  assert.match(waitNote(step, { kind: 'wait', transfer: busy({ uuid: S2.uuid, snapshot: 's2' }) }, 2), /transfer f{32} of s2 holds the volume: another push of this client is sending it; `snapferry abort f{32}` ends it; trying again in 2\.0 s/);
});
