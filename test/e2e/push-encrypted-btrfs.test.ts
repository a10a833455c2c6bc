// A push with client-side encryption (`encrypt:` in the client config) to a server that receives into btrfs: the
// server cannot receive ciphertext, so it refuses the stream at frame 0 with a clear, final error that names the
// archive server it needs; the push exits with that message, and nothing is received or left behind on the server.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import { generateKeyFile } from '../../core/crypto/key-file.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { assertReceived, createPair, until } from './harness.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 120_000, env: { HTTPS_PROXY: '', https_proxy: '' } });
const count = (text: string, what: RegExp) => text.split('\n').filter((l) => what.test(l)).length;

async function listed(dir: string): Promise<string[]> {
  return fs.readdir(dir).catch(() => []);
}

test('push with encrypt: to a btrfs server is refused at frame 0 with the archive message; nothing received or left', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 6 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-sealed-push-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'archive.key');
  await generateKeyFile(keyFile);
  const sealed = path.join(dir, 'sealed.yaml');
  await fs.writeFile(sealed, `server: ${server.url}\nencrypt: ${keyFile}\nretries: 3\n`);
  const subvolumesBefore = (await btrfs.subvolumeList(pair.server.mountPoint)).map((s) => s.path).sort();

  const r = await snapferry(['push', '--config', sealed, '--volume', 'home', s1]);
  assert.equal(r.exitCode, EXIT.failed, r.stderr);
  assert.equal(count(r.stderr, /this stream is sealed \(client-side encryption.*archive server \(store: in its config\)/), 1, r.stderr);
  assert.doesNotMatch(r.stderr, /trying again|retries_exhausted|gave up/, 'a final refusal is not retried');

  // The server: the transfer failed with the new code, nothing received, nothing staged, its spool gone.
  const api = new ServerApi({ server: server.url });
  const { transfers } = await api.transfers();
  assert.deepEqual(transfers.map((x) => [x.state, x.error?.code]), [['failed', 'encryption_needs_archive']]);
  await assert.rejects(fs.stat(pair.receivedPath('home', 's1')));
  await until('the refused spool is dropped', async () => ((await listed(path.join(pair.root, 'spool'))).length === 0 ? true : undefined));
  assert.deepEqual(await listed(path.join(pair.root, 'receiving')), []);
  assert.deepEqual((await btrfs.subvolumeList(pair.server.mountPoint)).map((s) => s.path).sort(), subvolumesBefore);

  // The volume is as before: the same snapshot pushed without encrypt: goes through.
  const plain = path.join(dir, 'plain.yaml');
  await fs.writeFile(plain, `server: ${server.url}\n`);
  const ok = await snapferry(['push', '--config', plain, '--volume', 'home', s1]);
  assert.equal(ok.exitCode, EXIT.ok, ok.stderr);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
});

test('push with encrypt: naming a key file that is missing or open to others stops before the server is asked (exit 2)', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-sealed-push-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const keyFile = path.join(dir, 'archive.key');
  const config = path.join(dir, 'client.yaml');
  await fs.writeFile(config, `server: ${server.url}\nencrypt: ${keyFile}\n`);
  const missing = await snapferry(['push', '--config', config, '--volume', 'home', s1]);
  assert.equal(missing.exitCode, EXIT.usage, missing.stderr);
  assert.match(missing.stderr, /cannot read the key file .*ENOENT/);
  await generateKeyFile(keyFile);
  await fs.chmod(keyFile, 0o644);
  const open = await snapferry(['push', '--config', config, '--volume', 'home', s1]);
  assert.equal(open.exitCode, EXIT.usage, open.stderr);
  assert.match(open.stderr, /is open to others \(mode 644\): chmod 600/);
  assert.deepEqual((await new ServerApi({ server: server.url }).transfers()).transfers, []);
});
