/**
 * A resumed push whose stream diverged from the server's must rewind the upload; when the server refuses that rewind
 * once (transfer_locked: the lease of a push killed moments before), the push retries and finishes, and then exits.
 * It used to print "done" and stay for ever: the framed send opened for the refused rewind was dropped without being
 * cancelled, and its `btrfs send`, blocked writing into a pipe nobody read, kept node's event loop alive.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { startFaultHttpProxy } from '../chaos/fault-http-proxy.ts';
import { assertReceived, createPair, disagreeFrom, pushPart } from './harness.ts';
import { ChildProcesses } from './processes.ts';

test('a rewind refused once: the push retries, finishes, exits, and leaves no btrfs send behind', { ...rootOnly, timeout: 150_000 }, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 6 });
  const server = await pair.startServer({ leaseMs: 1000 });
  const s1 = await pair.snapshot('s1');
  const partial = await pushPart(server, s1, 12);
  // The server's chain disagrees with what btrfs send makes from frame 5 on (as after `mv` of the snapshot, or a new
  // kernel): the push finds the last frame that matches with a second framed send, then asks for the rewind.
  await disagreeFrom(pair, server, partial.id, 5, 1000);

  const faults = await startFaultHttpProxy({ host: '127.0.0.1', port: Number(new URL(server.url).port) });
  t.after(() => faults.close());
  let rewinds = 0;
  faults.fail({
    status: 409,
    headers: { 'snapferry-error-code': 'transfer_locked' },
    body: JSON.stringify({ error: { code: 'transfer_locked', message: `transfer ${partial.id} has a request in flight; try again`, retryable: true } }),
    when: ({ method, path: p }) => method === 'POST' && p.endsWith('/rewind') && rewinds++ === 0,
  });

  const push = children.run(['push', '--server', faults.url, '--volume', 'v', s1]);
  await push.waitForStderr(/done: 1 snapshot/, 90_000);
  const exited = await Promise.race([push.exited, new Promise<null>((r) => setTimeout(() => r(null), 15_000))]);
  assert.notEqual(exited, null, `push printed done but did not exit:\n${push.stderr}`);
  assert.deepEqual(exited, { code: 0, signal: null }, push.stderr);
  assert.ok(await push.groupGone(5000), 'no btrfs send of the push is left running');
  assert.match(push.stderr, /rewound the upload from frame \d+ to 5/);
  assert.ok(rewinds >= 2, `the rewind was asked again after the refusal (${rewinds})`);
  await assertReceived(s1, pair.receivedPath('v', 's1'));
});
