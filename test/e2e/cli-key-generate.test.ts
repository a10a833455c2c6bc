// `snapferry key generate PATH` as a user runs it: a new key file, 0600, its id on stdout and where to keep a copy on
// stderr; an existing file (or a path that cannot be written) is refused with exit 2 and left as it was.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { EXIT } from '../../client/exit-codes.ts';
import { readKeyFile } from '../../core/crypto/key-file.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 60_000 });

async function folder(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-keygen-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('key generate writes a 0600 key file, prints its id, and says to keep a copy apart from the backups', async (t) => {
  const file = path.join(await folder(t), 'archive.key');
  const r = await snapferry(['key', 'generate', file]);
  assert.equal(r.exitCode, EXIT.ok, r.stderr);
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const key = await readKeyFile(file);
  assert.equal(r.stdout.trim(), key.id.toString('hex'));
  assert.match(r.stderr, new RegExp(`wrote key ${key.id.toString('hex')} to ${file.replace(/[.]/g, '\\.')}`));
  assert.match(r.stderr, /encrypt: /);
  assert.match(r.stderr, /Keep a copy of this file apart from the backups/);
  assert.match(r.stderr, /without it nothing sealed under it can be restored/);
});

test('key generate refuses an existing file with exit 2 and a message, and leaves the file as it was', async (t) => {
  const file = path.join(await folder(t), 'archive.key');
  await writeFile(file, 'an old key nobody may lose\n', { mode: 0o600 });
  const r = await snapferry(['key', 'generate', file]);
  assert.equal(r.exitCode, EXIT.usage, r.stderr);
  assert.match(r.stderr, /exists; a key file is never replaced .*choose another path/);
  assert.equal(r.stdout, '');
  assert.equal(await readFile(file, 'utf8'), 'an old key nobody may lose\n');
});

test('key generate into a folder that is not there is exit 2 with what failed', async (t) => {
  const file = path.join(await folder(t), 'no-such-folder', 'archive.key');
  const r = await snapferry(['key', 'generate', file]);
  assert.equal(r.exitCode, EXIT.usage, r.stderr);
  assert.match(r.stderr, /cannot create the key file .*: its folder .*no-such-folder does not exist \(ENOENT\): create it first \(mkdir -p /);
});
