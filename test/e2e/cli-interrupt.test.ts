// Ctrl-C through the command as a user runs it: every client command stops, says that running it again resumes, and
// exits 130, whatever was in flight (here a request to a server that accepted the connection and never answers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { assertReceived, createPair, until } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

/** A server that takes connections and never answers; resolves `connected` at each new one. */
async function silentServer(t: { after(fn: () => Promise<void>): void }) {
  const sockets = new Set<net.Socket>();
  let onConnect: () => void = () => undefined;
  const server = net.createServer((s) => {
    sockets.add(s);
    s.on('error', () => undefined);
    onConnect();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  return {
    url: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
    nextConnection: () => new Promise<void>((r) => (onConnect = r)),
  };
}

test('Ctrl-C exits 130 with "run the same command again to resume", for every client command', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const s1 = await pair.snapshot('s1');
  const silent = await silentServer(t);
  const commands = [
    ['push', '--volume', 'home', s1],
    ['restore', '--volume', 'home', 's1', pair.client.mountPoint],
    ['verify', '--volume', 'home', s1],
    ['status'],
    ['abort', 'abcdef'],
  ];
  for (const args of commands) {
    const connected = silent.nextConnection();
    const child = execa('node', [BIN, ...args, '--server', silent.url], { reject: false, timeout: 60_000 });
    // A command that ends before it connects (it failed to start) would leave this waiting until the file's timeout.
    const ended = await Promise.race([connected.then(() => null), child]);
    assert.equal(ended, null, `${args[0]} ended before it connected: ${ended?.stderr ?? ''}`);
    const stopped = Date.now();
    child.kill('SIGINT');
    const r = await child;
    assert.equal(r.exitCode, EXIT.interrupted, `${args[0]}: ${r.stderr}`);
    // At once, not after the request's stall timeout (30 s: restore's catalog request ignored the stop).
    const waited = Date.now() - stopped;
    assert.ok(waited < 10_000, `${args[0]} went on ${Math.round(waited / 1000)} s after Ctrl-C`);
    assert.match(r.stderr, /interrupted: run the same command again to resume/, args[0]);
    assert.doesNotMatch(r.stderr, /This operation was aborted/, args[0]);
  }
});

test('a push stopped with Ctrl-C lets go of its upload: the same command run at once resumes it without waiting out the lease', { ...rootOnly, timeout: 180_000 }, async (t) => {
  const pair = await createPair(t, { fillMB: 6 });
  // A lease far longer than the test's patience: a rerun that had to wait it out would say so, and take a minute.
  const server = await pair.startServer({ leaseMs: 60_000 });
  const s1 = await pair.snapshot('s1');
  const args = ['push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', s1];
  const first = execa('node', [BIN, ...args], { reject: false, timeout: 120_000 });
  const api = new ServerApi({ server: server.url });
  const uploading = await until('the push uploads', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.wireOffset > 0));
  first.kill('SIGINT');
  const stopped = await first;
  assert.equal(stopped.exitCode, EXIT.interrupted, stopped.stderr);
  const started = performance.now();
  const again = await execa('node', [BIN, ...args], { reject: false, timeout: 120_000 });
  assert.equal(again.exitCode, EXIT.ok, again.stderr);
  assert.doesNotMatch(again.stderr, /another push holds this upload|transfer_locked/, 'the rerun waited for the push it replaces');
  assert.match(again.stderr, /resuming at/, 'the rerun resumed the upload instead of starting over');
  assert.ok(performance.now() - started < 50_000, `the rerun took ${Math.round(performance.now() - started)} ms`);
  const transfers = (await api.transfers()).transfers.filter((x) => x.snapshot === 's1');
  assert.deepEqual(transfers.map((x) => [x.id, x.state]), [[uploading.id, 'received']], 'one transfer, resumed and received');
  await assertReceived(s1, pair.receivedPath('home', 's1'));
});

test('Ctrl-C before push has begun its work (reading its config) says to run it again and exits 130, as a later one does', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const s1 = await pair.snapshot('s1');
  const silent = await silentServer(t);
  // The config is a FIFO: push waits in reading it, in its first moments, until this test writes it.
  const config = path.join(pair.client.mountPoint, 'client.yaml');
  await execa('mkfifo', [config]);
  const child = execa('node', [BIN, 'push', '--config', config, '--volume', 'home', s1], { reject: false, timeout: 60_000 });
  // Opening a FIFO to write waits for its reader: push is then reading its config.
  const writer = await fs.open(config, 'w');
  child.kill('SIGINT');
  // Time for the signal to be handled before push reads on: before, Node's default had ended it with no word.
  await sleep(500);
  await writer.writeFile(`server: ${silent.url}\n`).catch(() => undefined);
  await writer.close().catch(() => undefined);
  const r = await child;
  assert.equal(r.exitCode, EXIT.interrupted, `signal ${r.signal}: ${r.stderr}`);
  assert.match(r.stderr, /interrupted: run the same command again to resume/);
});
