// `push --dry-run` through the command: the plan (which snapshots, from which parent, about how big), and nothing
// sent: the server has no new transfer.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { createPair } from './harness.ts';
import { snapferry } from './processes.ts';


test('push --dry-run prints which snapshots would go, from which parent, with the estimate, and sends nothing', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 4 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  assert.equal((await snapferry(['push', '--server', server.url, '--volume', 'home', s1])).exitCode, EXIT.ok);
  await pair.snapshot('s2');
  await pair.snapshot('s3');
  const api = new ServerApi({ server: server.url });
  const before = (await api.transfers()).transfers.length;

  const r = await snapferry(['push', '--dry-run', '--server', server.url, '--volume', 'home', pair.snaps]);
  assert.equal(r.exitCode, EXIT.ok, r.stderr);
  assert.deepEqual(r.stdout.split('\n').filter((l) => l !== ''), [
    ...['s2 (incremental from s1)', 's3 (incremental from s2)'].map((what) => r.stdout.split('\n').find((l) => l.startsWith(`would send ${what}, about `))),
    r.stdout.split('\n').find((l) => /^2 snapshot\(s\) would be sent, about .* raw in all; nothing was sent \(--dry-run\)$/.test(l)),
  ], r.stdout);

  const json = await snapferry(['push', '--dry-run', '--json', '--server', server.url, '--volume', 'home', pair.snaps]);
  assert.equal(json.exitCode, EXIT.ok, json.stderr);
  // The plan is one event among the JSON lines of --json (notes come before it).
  const plan = json.stdout.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as { event: string }).find((e) => e.event === 'plan') as unknown as { volume: string; planned: { snapshot: string; parent: string | null; rawBytes: number }[]; present: string[] };
  assert.deepEqual(plan.planned.map((p) => [p.snapshot, p.parent]), [['s2', 's1'], ['s3', 's2']]);
  assert.ok(plan.planned.every((p) => p.rawBytes > 0));
  assert.deepEqual(plan.present, ['s1']);

  const full = await snapferry(['push', '--dry-run', '--server', server.url, '--volume', 'other', await pair.snapshot('s4')]);
  assert.match(full.stdout, /^would send s4 \(full\), about \d+(\.\d)? MiB raw$/m, full.stderr);
  assert.equal((await api.transfers()).transfers.length, before, 'nothing was sent');
});
