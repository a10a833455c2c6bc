import { test } from 'node:test';
import assert from 'node:assert/strict';
import { cannotApplyAdvice } from '../../../client/push/cannot-apply.ts';
import type { LocalSnapshot } from '../../../core/plan.ts';

const snap = (name: string): LocalSnapshot => ({
  name, path: `/snaps/${name}`, uuid: `uuid-${name}`, localUuid: `local-${name}`, origin: 'home', generation: 1, created: null, time: null,
});

test('an incremental the server cannot apply points at its parent on this machine and says how to go around it', () => {
  const text = cannotApplyAdvice({ snapshot: snap('home.7'), parent: snap('home.6') }, 'abcd');
  assert.match(text, /home\.7 is an incremental on home\.6, and home\.6 on this machine differs from the server's copy of it/);
  assert.match(text, /changed after it was sent/);
  assert.match(text, /btrfs property set -ts \/snaps\/home\.6 ro false\) or delete it/);
  assert.match(text, /from an older snapshot the server holds, or in full/);
  assert.match(text, /snapferry abort abcd/);
});

test('a full send the server cannot apply is not blamed on a parent', () => {
  const text = cannotApplyAdvice({ snapshot: snap('home.1'), parent: null }, 'abcd');
  assert.doesNotMatch(text, /parent|incremental|property set/);
  assert.match(text, /does not try again/);
});
