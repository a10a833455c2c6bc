// `run --dry-run` says what its push would send, as `push --dry-run` does, and the snapshot it would take with it:
// it said only "would snapshot X", and the real run then said "pushed 2".
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mutate, rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { homeRun } from './run-helpers.ts';

const T = ['2026-11-01T10:00:00Z', '2026-11-01T12:00:00Z'];
const NAME = ['home.20261101T100000Z', 'home.20261101T110000Z', 'home.20261101T120000Z'];

test('run --dry-run prints the push plan: the snapshots not yet sent, and the one it would take, each with its parent', rootOnly, async (t) => {
  const { pair, api, run, config } = await homeRun(t, { fillMB: 4 });
  assert.equal((await run(config, T[0]!)).exitCode, EXIT.ok);
  // Taken by hand since, and not pushed yet.
  await mutate(pair.source, 'by-hand');
  await pair.snapshot(NAME[1]!);

  const dry = await run(config, T[1]!, { dryRun: true });
  assert.equal(dry.exitCode, EXIT.ok, dry.lines.join('\n'));
  assert.deepEqual(dry.lines, [`home: would snapshot ${NAME[2]}, would push 2, would prune 0`], dry.notes.join('\n'));
  const plan = dry.notes.filter((n) => n.includes('would'));
  assert.equal(plan.length, 3, dry.notes.join('\n'));
  assert.match(plan[0]!, new RegExp(`^home: would send ${NAME[1]} \\(incremental from ${NAME[0]}\\), about .+ raw$`));
  assert.equal(plan[1], `home: would send ${NAME[2]} once taken (incremental from ${NAME[1]}), size unknown until then`);
  assert.equal(plan[2], 'home: 2 snapshot(s) would be sent; nothing was sent (--dry-run)');
  assert.deepEqual(dry.started, [], 'nothing was sent');
  assert.equal((await api.snapshots('home')).snapshots.length, 1);

  // The real run sends what the dry run said, in that order, on those parents.
  const real = await run(config, T[1]!);
  assert.equal(real.exitCode, EXIT.ok, real.lines.join('\n'));
  assert.deepEqual(real.started, [{ snapshot: NAME[1], parent: NAME[0] }, { snapshot: NAME[2], parent: NAME[1] }]);
});
