// `snapferry snapshots` lists what the server holds, and `snapferry abort ID` ends an upload, through the command as
// a user runs it (no curl).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import { createPair, until } from './harness.ts';
import { SNAPFERRY_BIN, snapferry } from './processes.ts';


test('snapferry snapshots lists each volume\'s snapshots on the server with taken time and size; --volume and --json', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const s2 = await pair.snapshot('s2');
  const s3 = await pair.snapshot('s3');
  for (const [volume, snaps] of [['home', [s1, s2]], ['etc', [s3]]] as const) {
    const r = await snapferry(['push', '--server', server.url, '--volume', volume, ...snaps]);
    assert.equal(r.exitCode, EXIT.ok, r.stderr);
  }
  const text = await snapferry(['snapshots', '--server', server.url]);
  assert.equal(text.exitCode, 0, text.stderr);
  const lines = text.stdout.trim().split('\n');
  assert.match(lines[0]!, /^VOLUME\s+SNAPSHOT\s+TAKEN\s+RECEIVED\s+SIZE$/);
  assert.equal(lines.length, 4, text.stdout);
  assert.match(text.stdout, /^home\s+s1\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ\s+\d+(\.\d)? MiB$/m);
  assert.match(text.stdout, /^home\s+s2\s/m);
  assert.match(text.stdout, /^etc\s+s3\s/m);

  const json = await snapferry(['snapshots', '--server', server.url, '--volume', 'home', '--json']);
  assert.equal(json.exitCode, 0, json.stderr);
  const rows = JSON.parse(json.stdout) as { volume: string; name: string; takenAt: string | null; rawBytes: number }[];
  assert.deepEqual(rows.map((r) => `${r.volume}/${r.name}`), ['home/s1', 'home/s2']);
  assert.ok(rows.every((r) => r.takenAt !== null) && rows[0]!.rawBytes > 1_000_000, json.stdout);

  const bad = await snapferry(['snapshots', '--server', server.url, '--volume', '../etc']);
  assert.equal(bad.exitCode, EXIT.usage, bad.stderr);

  // A volume the server holds nothing of says so, as restore does, instead of an empty table and exit 0.
  for (const json of [[], ['--json']]) {
    const none = await snapferry(['snapshots', '--server', server.url, '--volume', 'nosuch', ...json]);
    assert.equal(none.exitCode, EXIT.usage, none.stderr);
    assert.equal(none.stdout, '');
    assert.equal(none.stderr.trim(), 'snapferry: the server holds nothing of volume nosuch: no such volume, or nothing received into it yet (it holds etc, home); check --volume');
  }
});

test('snapferry abort ID ends an upload in progress by the first digits of its id', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 6 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const push = execa('node', [SNAPFERRY_BIN, 'push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', '--retries', '0', s1], { reject: false, timeout: 120_000 });
  t.after(() => void push.kill('SIGKILL'));
  const api = new ServerApi({ server: server.url });
  const uploading = await until('an upload runs', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading'));
  const r = await snapferry(['abort', uploading.id.slice(0, 8), '--server', server.url]);
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`aborted transfer ${uploading.id} \\(home/s1\\), which was uploading`));
  assert.equal((await api.transfer(uploading.id)).state, 'aborted');
  const pushed = await push;
  assert.notEqual(pushed.exitCode, EXIT.ok, 'the push learns that its upload was aborted');
  // An id no transfer has: no rerun finds it, so a mistake (2), like a snapshot name the server does not hold.
  const unknown = uploading.id.startsWith('ffff') ? '0000' : 'ffff';
  const wrong = await snapferry(['abort', unknown, '--server', server.url]);
  assert.equal(wrong.exitCode, EXIT.usage, wrong.stderr);
  assert.match(wrong.stderr, /no transfer ffff|no transfer 0000/);
  assert.match(wrong.stderr, /snapferry status/);
});

test('snapferry abort of the upload a push is sending stops that push (exit 1, saying so): the stream is not sent again as a new upload', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 24 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  // No --retries: a push that took the abort for a lost upload would start over and go on until it was done.
  const push = execa('node', [SNAPFERRY_BIN, 'push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '4M', s1], { reject: false, timeout: 120_000 });
  t.after(() => void push.kill('SIGKILL'));
  const api = new ServerApi({ server: server.url });
  const uploading = await until('1 MiB uploaded', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.wireOffset > 1024 * 1024), 60_000, 50);
  const r = await snapferry(['abort', uploading.id.slice(0, 8), '--server', server.url]);
  assert.equal(r.exitCode, 0, r.stderr);
  const pushed = await push;
  t.diagnostic(pushed.stderr);
  assert.equal(pushed.exitCode, EXIT.failed, pushed.stderr);
  assert.match(pushed.stderr, new RegExp(`transfer ${uploading.id} of s1 was aborted on the server \\(snapferry abort\\); not sent again: push it again to start over`));
  assert.doesNotMatch(pushed.stderr, /starting over|no longer has this upload \(404/);
  // Only the error: not a line that says it resumes (an interrupted request, "write EPIPE") just before it stops.
  assert.doesNotMatch(pushed.stderr, /resuming|interrupted/);
  // One transfer, the aborted one: no second upload began, so no byte of the stream went again.
  const { transfers } = await api.transfers();
  assert.deepEqual(transfers.map((x) => [x.id, x.state]), [[uploading.id, 'aborted']]);
  assert.deepEqual((await api.snapshots('home')).snapshots, []);
});

test('an abort that the push learns of through a request that failed (a line cut, "write EPIPE") stops it with the error alone: no line that says it resumes', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 24 });
  const server = await pair.startServer();
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: Number(new URL(server.url).port) } });
  t.after(() => proxy.close());
  const s1 = await pair.snapshot('s1');
  const push = execa('node', [SNAPFERRY_BIN, 'push', '--server', proxy.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '4M', s1], { reject: false, timeout: 120_000 });
  t.after(() => void push.kill('SIGKILL'));
  const api = new ServerApi({ server: server.url });
  const uploading = await until('1 MiB uploaded', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.wireOffset > 1024 * 1024), 60_000, 50);
  // The push's request fails with no answer as the abort comes, and the line stays down until the abort is done:
  // tus-js-client retries (the request cut, then a connection refused), and its next request finds the upload gone.
  // The abort goes straight to the server from here, as quickly as the server's own close races the push's write:
  // a line that stayed down for seconds would be an interruption the push rightly names (HOLD_MS).
  proxy.refuse(true);
  await proxy.cutNow();
  assert.equal((await api.abort(uploading.id)).state, 'aborted');
  proxy.refuse(false);
  const pushed = await push;
  t.diagnostic(pushed.stderr);
  assert.equal(pushed.exitCode, EXIT.failed, pushed.stderr);
  assert.match(pushed.stderr, new RegExp(`transfer ${uploading.id} of s1 was aborted on the server \\(snapferry abort\\); not sent again: push it again to start over`));
  assert.doesNotMatch(pushed.stderr, /resuming|interrupted|starting over/);
});
