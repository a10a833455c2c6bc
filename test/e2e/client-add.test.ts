// `snapferry client add` as an admin runs it on a new server: its folder need not exist, and the token never lands
// where others can read it (a `> file` under umask 022 is refused before any client exists; --token-file is 0600).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { EXIT } from '../../client/exit-codes.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-client-add-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

/** `snapferry ARGS > out` through a shell with the usual umask, as an admin types it. */
const redirected = (args: string[], out: string, umask = '022') =>
  execa('sh', ['-c', `umask ${umask}; exec node "$0" "$@" > "${out}"`, BIN, ...args], { reject: false, timeout: 60_000 });

test('client add creates the folder of a tokens file that does not exist yet', async (t) => {
  const dir = await tempDir(t);
  const tokens = path.join(dir, 'etc', 'snapferry', 'tokens.json');
  const r = await execa('node', [BIN, 'client', 'add', 'laptop', '--tokens', tokens], { reject: false });
  assert.equal(r.exitCode, 0, r.stderr);
  assert.match(r.stdout, /^\S{20,}$/);
  assert.equal((await fs.stat(tokens)).mode & 0o777, 0o600);
  assert.equal((await fs.stat(path.dirname(tokens))).mode & 0o777, 0o700);
});

test('a token redirected into a file others can read is refused before the client is added; umask 077 and --token-file work', async (t) => {
  const dir = await tempDir(t);
  const tokens = path.join(dir, 'tokens.json');
  const open = path.join(dir, 'laptop.token');
  const refused = await redirected(['client', 'add', 'laptop', '--tokens', tokens], open);
  assert.equal(refused.exitCode, EXIT.usage, refused.stderr);
  assert.match(refused.stderr, /others can read \(mode 0644\).*--token-file FILE/);
  assert.equal(await fs.readFile(open, 'utf8'), '', 'no token written');
  const list = await execa('node', [BIN, 'client', 'list', '--tokens', tokens, '--json'], { reject: false });
  assert.ok(list.exitCode !== 0 || JSON.parse(list.stdout).length === 0, `no client added: ${list.stdout}`);

  const closed = path.join(dir, 'closed.token');
  const ok = await redirected(['client', 'add', 'laptop', '--tokens', tokens], closed, '077');
  assert.equal(ok.exitCode, 0, ok.stderr);
  assert.match(await fs.readFile(closed, 'utf8'), /^\S{20,}\n$/);

  const file = path.join(dir, 'desk.token');
  const written = await execa('node', [BIN, 'client', 'add', 'desk', '--tokens', tokens, '--token-file', file], { reject: false });
  assert.equal(written.exitCode, 0, written.stderr);
  assert.equal(written.stdout, '');
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  assert.match(await fs.readFile(file, 'utf8'), /^\S{20,}\n$/);
  // Never over an existing file (it may hold another client's token), and then no client is added either.
  const again = await execa('node', [BIN, 'client', 'add', 'other', '--tokens', tokens, '--token-file', file], { reject: false });
  assert.equal(again.exitCode, EXIT.usage, again.stderr);
  assert.match(again.stderr, /exists: give a new file/);
  const names = JSON.parse((await execa('node', [BIN, 'client', 'list', '--tokens', tokens, '--json'])).stdout).map((e: { name: string }) => e.name);
  assert.deepEqual(names, ['laptop', 'desk']);
});
