import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { SnapferryError } from '../../core/errors.ts';
import { addClient, hashToken, newToken, readTokens, removeClient } from '../../server/tokens.ts';
import { TokenRegistry, assertOpenAccessAllowed, isLoopback, openGate, tokenGate } from '../../server/auth.ts';
import type { SafeName } from '../../core/names.ts';
import { authHeaders, readToken } from '../../client/http/token.ts';
import { silentLogger } from '../../server/log.ts';

async function tempDir(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-auth-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  return dir;
}

async function rejectsWith(p: Promise<unknown>, code: string, message?: RegExp): Promise<void> {
  await assert.rejects(p, (err: unknown) => {
    assert.ok(err instanceof SnapferryError, String(err));
    assert.equal(err.code, code);
    if (message) assert.match(err.message, message);
    return true;
  });
}

test('a token is 32 random bytes in base64url, and the file keeps only its SHA-256', async (t) => {
  const file = path.join(await tempDir(t), 'tokens.json');
  const { entry, token } = await addClient(file, 'alice');
  assert.match(token, /^[A-Za-z0-9_-]{43}$/);
  assert.equal(Buffer.from(token, 'base64url').length, 32);
  assert.notEqual(newToken(), newToken());
  assert.equal(entry.sha256, hashToken(token));
  assert.equal(hashToken('abc'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  const text = await fs.readFile(file, 'utf8');
  assert.ok(!text.includes(token), 'the plain token is never written');
  assert.equal((await fs.stat(file)).mode & 0o777, 0o600);
  assert.deepEqual((await readTokens(file)).map((e) => [e.name, e.role]), [['alice', 'client']]);
});

test('add refuses a duplicate name and a bad one; remove and list; no temp or lock file is left', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'tokens.json');
  await addClient(file, 'alice');
  await addClient(file, 'ops', 'admin');
  await rejectsWith(addClient(file, 'alice'), 'client_exists', /already has a client named alice/);
  await rejectsWith(addClient(file, '../etc'), 'invalid_input', /not allowed/);
  assert.deepEqual((await readTokens(file)).map((e) => [e.name, e.role]), [['alice', 'client'], ['ops', 'admin']]);

  const removed = await removeClient(file, 'alice');
  assert.equal(removed.name, 'alice');
  await rejectsWith(removeClient(file, 'alice'), 'client_not_found', /client list/);
  assert.deepEqual((await readTokens(file)).map((e) => e.name), ['ops']);
  assert.deepEqual(await fs.readdir(dir), ['tokens.json']);
});

test('adds that run at once all land (none reads the file another is replacing)', async (t) => {
  const file = path.join(await tempDir(t), 'tokens.json');
  const names = Array.from({ length: 8 }, (_, i) => `c${i}`);
  await Promise.all(names.map((n) => addClient(file, n)));
  assert.deepEqual((await readTokens(file)).map((e) => e.name).sort(), names);
});

test('a missing or broken tokens file is an error that says what to do', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'tokens.json');
  await rejectsWith(readTokens(file), 'tokens_file_missing', /snapferry client add NAME --tokens/);
  await fs.writeFile(file, '{"version":1,"clients":[{"name":"a","role":"client","sha256":"xyz","createdAt":"now"}]}');
  await rejectsWith(readTokens(file), 'tokens_file_invalid', /clients\.0\.sha256/);
  await fs.writeFile(file, 'not json');
  await rejectsWith(readTokens(file), 'tokens_file_invalid');
  await rejectsWith(addClient(file, 'b'), 'tokens_file_invalid');
});

test('one token (sha256) under two names is refused, as one name twice is: the first entry would take the other\'s token', async (t) => {
  const file = path.join(await tempDir(t), 'tokens.json');
  const laptop = await addClient(file, 'laptop');
  const text = JSON.parse(await fs.readFile(file, 'utf8')) as { clients: object[] };
  text.clients.unshift({ name: 'evil', role: 'admin', sha256: laptop.entry.sha256, createdAt: laptop.entry.createdAt });
  await fs.writeFile(file, JSON.stringify(text));
  await rejectsWith(readTokens(file), 'tokens_file_invalid', /gives evil and laptop the same token \(sha256\); remove the entry that should not have it/);
  await rejectsWith(addClient(file, 'b'), 'tokens_file_invalid');
});

test('the registry knows each token, refuses others, and reloads when the file changes', async (t) => {
  const file = path.join(await tempDir(t), 'tokens.json');
  const alice = await addClient(file, 'alice');
  const ops = await addClient(file, 'ops', 'admin');
  const registry = new TokenRegistry(file, silentLogger());
  await registry.load();
  assert.deepEqual(await registry.identify(`Bearer ${alice.token}`), { role: 'client', client: 'alice' });
  assert.deepEqual(await registry.identify(`bearer  ${ops.token} `), { role: 'admin', name: 'ops' });
  await rejectsWith(registry.identify(null), 'unauthorized', /needs a token.*--token-file/);
  await rejectsWith(registry.identify(`Basic ${alice.token}`), 'unauthorized', /not `Bearer TOKEN`/);
  await rejectsWith(registry.identify(`Bearer ${alice.token}x`), 'unauthorized', /not known/);
  // The hash itself is not a token.
  await rejectsWith(registry.identify(`Bearer ${alice.entry.sha256}`), 'unauthorized');

  const bob = await addClient(file, 'bob');
  assert.deepEqual(await registry.identify(`Bearer ${bob.token}`), { role: 'client', client: 'bob' });
  await removeClient(file, 'alice');
  await rejectsWith(registry.identify(`Bearer ${alice.token}`), 'unauthorized');

  // A broken file locks everyone out (retryably) instead of keeping removed tokens alive.
  await fs.writeFile(file, '{');
  await rejectsWith(registry.identify(`Bearer ${bob.token}`), 'tokens_unavailable');
  // Fixed (here: made anew), it is read again: bob's new token works, his old one does not.
  await fs.rm(file);
  const bobAgain = await addClient(file, 'bob');
  assert.deepEqual(await registry.identify(`Bearer ${bobAgain.token}`), { role: 'client', client: 'bob' });
  await rejectsWith(registry.identify(`Bearer ${bob.token}`), 'unauthorized', /not known/);
});

test('the registry tells of each client whose token left the file: removed, or replaced under the same name; not of admins or added clients', async (t) => {
  const file = path.join(await tempDir(t), 'tokens.json');
  await addClient(file, 'alice');
  await addClient(file, 'bob');
  await addClient(file, 'carol');
  await addClient(file, 'ops', 'admin');
  const registry = new TokenRegistry(file, silentLogger());
  const revoked: string[] = [];
  registry.onRevoked((client) => revoked.push(client));
  await registry.load();
  assert.deepEqual(revoked, [], 'the first read revokes nothing');

  await addClient(file, 'dave');
  await removeClient(file, 'ops');
  await registry.load();
  assert.deepEqual(revoked, []);

  await removeClient(file, 'alice');
  await registry.load();
  assert.deepEqual(revoked, ['alice']);
  await registry.load();
  assert.deepEqual(revoked, ['alice'], 'once per change');

  // Replaced while the server did not look: the token that began its uploads is gone all the same.
  await removeClient(file, 'bob');
  await addClient(file, 'bob');
  await registry.load();
  assert.deepEqual(revoked, ['alice', 'bob']);

  // Removed by an edit that broke the file on the way: found once the file is whole again.
  const whole = await fs.readFile(file, 'utf8');
  await fs.writeFile(file, '{');
  await assert.rejects(registry.load());
  await fs.writeFile(file, whole.replace(/\{[^{}]*"name": "carol"[^{}]*\},?/, '').replace(/,(\s*)\]/, '$1]'));
  await registry.load();
  assert.deepEqual(revoked, ['alice', 'bob', 'carol']);
});

test('--no-auth is for loopback addresses only, and never behind a proxy', () => {
  for (const host of ['127.0.0.1', '127.8.9.1', '::1', '[::1]', 'localhost', '::ffff:127.0.0.1', '0:0:0:0:0:0:0:1']) {
    assert.ok(isLoopback(host), host);
    assert.doesNotThrow(() => assertOpenAccessAllowed(host, false));
  }
  for (const host of ['0.0.0.0', '::', '192.168.1.2', '10.0.0.1', 'backup.example.net', '::2', '128.0.0.1']) {
    assert.ok(!isLoopback(host), host);
    assert.throws(() => assertOpenAccessAllowed(host, false), /only allowed on a loopback address/);
  }
  assert.throws(() => assertOpenAccessAllowed('127.0.0.1', true), /--behind-proxy/);
});

test('the client reads its token from --token-file, else SNAPFERRY_TOKEN, and sends it as a bearer header', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'token');
  const token = newToken();
  await fs.writeFile(file, `${token}\n`, { mode: 0o600 });
  assert.equal(await readToken({ tokenFile: file, env: { SNAPFERRY_TOKEN: 'other' } }), token);
  assert.equal(await readToken({ env: { SNAPFERRY_TOKEN: ` ${token} ` } }), token);
  assert.equal(await readToken({ env: {} }), null);
  assert.deepEqual(authHeaders(token), { authorization: `Bearer ${token}` });
  assert.deepEqual(authHeaders(null), {});
  await rejectsWith(readToken({ tokenFile: path.join(dir, 'nope') }), 'invalid_input', /cannot read the token file/);
  await fs.writeFile(file, 'two words\n');
  await rejectsWith(readToken({ tokenFile: file }), 'invalid_input', /does not hold a token/);
  // As a key file: one that group or others can read is refused, whatever it holds.
  await fs.writeFile(file, `${token}\n`);
  for (const mode of [0o644, 0o640, 0o620, 0o604]) {
    await fs.chmod(file, mode);
    await rejectsWith(readToken({ tokenFile: file }), 'token_file_open', new RegExp(`open to others \\(mode ${mode.toString(8)}\\).*: chmod 600 ${file}$`));
  }
});

test('absent: of the clients asked, those the tokens file does not hold as clients (an admin\'s name owns no upload); none without a file', async (t) => {
  const file = path.join(await tempDir(t), 'tokens.json');
  await addClient(file, 'alice');
  await addClient(file, 'ops', 'admin');
  const gate = await tokenGate(file, silentLogger());
  t.after(() => gate.close());
  assert.deepEqual(gate.absent(['alice', 'bob', 'ops', 'default'] as SafeName[]), ['bob', 'ops', 'default']);
  assert.deepEqual(openGate().absent(['alice', 'bob'] as SafeName[]), []);
});
