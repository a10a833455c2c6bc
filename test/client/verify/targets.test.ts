/** Which snapshots a verify checks (client/verify/targets.ts), and how a difference reads (client/verify/view.ts). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { LocalSnapshot } from '../../../core/plan.ts';
import type { Snapshot } from '../../../core/protocol.ts';
import type { EntryRecord } from '../../../core/tree-digest/types.ts';
import { chooseTargets } from '../../../client/verify/targets.ts';
import { describeDifference } from '../../../client/verify/view.ts';
import { exitCodeFor, EXIT } from '../../../client/exit-codes.ts';
import { VerifyDifferences } from '../../../client/verify/check.ts';

const uuid = (i: number) => `00000000-0000-0000-0000-${String(i).padStart(12, '0')}`;
const local = (i: number): LocalSnapshot => ({ name: `s${i}` as LocalSnapshot['name'], path: `/snaps/s${i}`, uuid: uuid(i), localUuid: uuid(500 + i), origin: null, generation: 100 + i, created: null, time: null });
const server = (i: number): Snapshot => ({ name: `s${i}`, uuid: uuid(i), serverUuid: uuid(1000 + i), parentUuid: null, receivedAt: '2026-01-01T00:00:00Z', rawBytes: 1, wireBytes: 1, transferId: null, altered: null });

test('a folder: the newest snapshot both sides hold, whatever the order they are listed in', () => {
  const found = [local(3), local(1), local(2)];
  const got = chooseTargets({ named: [], found, server: [server(1), server(2)], volume: 'v' });
  assert.deepEqual(got.map((t) => t.local.name), ['s2'], 's3 is not on the server yet');
});

test('a sample goes round every older snapshot, one more each run', () => {
  const found = [1, 2, 3, 4, 5].map(local);
  const held = [1, 2, 3, 4, 5].map(server);
  const seen = new Set<string>();
  for (let run = 0; run < 4; run++) {
    const got = chooseTargets({ named: [], found, server: held, volume: 'v', sample: 1, rotation: run });
    assert.equal(got[0]!.local.name, 's5');
    assert.equal(got.length, 2);
    seen.add(got[1]!.local.name);
  }
  assert.deepEqual([...seen].sort(), ['s1', 's2', 's3', 's4']);
});

test('a snapshot named one by one must be on the server: usage error (exit 2) that says to push it', () => {
  assert.throws(() => chooseTargets({ named: [local(7)], found: [], server: [server(1)], volume: 'v' }), (err: Error & { code: string }) => {
    assert.equal(err.code, 'snapshot_not_on_server');
    assert.equal(exitCodeFor(err), EXIT.usage);
    assert.match(err.message, /push it first/);
    return true;
  });
});

test('differences read as what differs, here and on the server; the differences exit code is 3', () => {
  const rec = (mode: number, uid: number): EntryRecord => ({ kind: 'file', mode, uid, gid: uid, size: '1', mtime: '1.000000000', rdev: null, target: null, xattrs: null, content: 'aa', link: null });
  assert.equal(describeDifference({ path: 'a', differs: ['mode', 'owner'], local: rec(0o644, 0), remote: rec(0o600, 7) }), 'mode 0644 here, 0600 on the server; owner 0:0 here, 7:7 on the server');
  assert.equal(describeDifference({ path: 'a', differs: ['missing'], local: rec(0o644, 0), remote: null }), 'missing on the server (a file here)');
  assert.equal(EXIT.differences, 3);
  assert.equal(exitCodeFor(new VerifyDifferences('x', {})), 3);
});
