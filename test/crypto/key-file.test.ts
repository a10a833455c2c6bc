// The key file (core/crypto/key-file.ts): generated 0600 and never over another file, read back to the same key,
// and refused, with a message that says what to do, when it is damaged, of another version, or readable by others.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdtemp, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import fc from 'fast-check';
import { formatKeyFile, generateKeyFile, parseKeyFile, readKeyFile } from '../../core/crypto/key-file.ts';
import { KeyFileError } from '../../core/crypto/errors.ts';
import { deriveKeys } from '../../core/crypto/keys.ts';

async function folder(t: { after(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-key-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function codeOf(err: unknown): string {
  assert.ok(err instanceof KeyFileError, `not a KeyFileError: ${String(err)}`);
  return err.code;
}

test('a generated key file is 0600, even under a permissive umask, and reads back to the key it returned', async (t) => {
  const file = path.join(await folder(t), 'archive.key');
  const old = process.umask(0);
  let key;
  try {
    key = await generateKeyFile(file);
  } finally {
    process.umask(old);
  }
  assert.equal((await stat(file)).mode & 0o777, 0o600);
  const read = await readKeyFile(file);
  assert.ok(read.id.equals(key.id) && read.sealKey.equals(key.sealKey) && read.nonceKey.equals(key.nonceKey));
  assert.match(await readFile(file, 'utf8'), /^# snapferry sealing key.*\nsnapferry-key 1\nid [0-9a-f]{16}\nsecret [A-Za-z0-9_-]{43}\n$/);
});

test('two generated keys differ', async (t) => {
  const dir = await folder(t);
  const a = await generateKeyFile(path.join(dir, 'a.key'));
  const b = await generateKeyFile(path.join(dir, 'b.key'));
  assert.ok(!a.id.equals(b.id));
});

test('generate refuses a path that exists, file or symlink, and leaves it as it was', async (t) => {
  const dir = await folder(t);
  const file = path.join(dir, 'archive.key');
  await generateKeyFile(file);
  const before = await readFile(file, 'utf8');
  await assert.rejects(generateKeyFile(file), (err) => codeOf(err) === 'key_file_exists' && /never replaced/.test((err as Error).message));
  assert.equal(await readFile(file, 'utf8'), before);
  // A symlink planted at the name, to a file elsewhere, is not followed.
  const target = path.join(dir, 'elsewhere');
  await writeFile(target, 'precious');
  await symlink(target, path.join(dir, 'planted.key'));
  await assert.rejects(generateKeyFile(path.join(dir, 'planted.key')), (err) => codeOf(err) === 'key_file_exists');
  assert.equal(await readFile(target, 'utf8'), 'precious');
});

test('a key file others can read is refused with the chmod that fixes it; a missing one is unreadable', async (t) => {
  const dir = await folder(t);
  const file = path.join(dir, 'archive.key');
  await generateKeyFile(file);
  await chmod(file, 0o644);
  await assert.rejects(readKeyFile(file), (err) => codeOf(err) === 'key_file_invalid' && (err as Error).message.includes(`chmod 600 ${file}`));
  await assert.rejects(readKeyFile(path.join(dir, 'missing.key')), (err) => codeOf(err) === 'key_file_unreadable' && /ENOENT/.test((err as Error).message));
});

test('parse reads what format writes, for any secret', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), (secret) => {
      assert.ok(parseKeyFile(formatKeyFile(secret), 'k').sealKey.equals(deriveKeys(secret).sealKey));
    }),
  );
});

test('any one changed character of the id or the secret is refused as a damaged file, never read as another key', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.nat(), fc.constantFrom(...'0123456789abcdefABCXYZ_-'), (secret, at, ch) => {
      const text = formatKeyFile(secret);
      const start = text.indexOf('\nid ') + 4;
      const spots = [...text.slice(start)].map((c, i) => ({ c, i: start + i })).filter(({ c }) => /[0-9A-Za-z_-]/.test(c) && c !== ch);
      fc.pre(spots.length > 0);
      const { i } = spots[at % spots.length]!;
      // "secret" and "id" are letters too: a changed field name is refused as well (unknown field, missing line).
      const damaged = text.slice(0, i) + ch + text.slice(i + 1);
      assert.throws(() => parseKeyFile(damaged, 'k.key'), (err) => codeOf(err) === 'key_file_invalid');
    }),
  );
});

test('another format, another version, or missing and extra lines are refused by name', () => {
  const good = formatKeyFile(new Uint8Array(32).fill(1));
  const cases: [string, RegExp][] = [
    ['', /not a snapferry key file/],
    ['-----BEGIN OPENSSH PRIVATE KEY-----\n', /not a snapferry key file/],
    [good.replace('snapferry-key 1', 'snapferry-key 2'), /version 2; this snapferry reads version 1/],
    [good.replace(/^id .*\n/m, ''), /no "id" line/],
    [good.replace(/^secret .*\n/m, ''), /no "secret" line/],
    [good + 'algorithm aes\n', /unknown field "algorithm"/],
    [good + good.split('\n')[2] + '\n', /"id" appears twice/],
    // 43 base64url characters carry 258 bits: the last one's 2 spare bits must be 0, or the text is not this key's.
    // Here the secret (32 bytes of 1) ends in 'E' (000100); 'F' (000101) differs in a spare bit only.
    [good.replace(/^(secret .*)E$/m, '$1F'), /not 32 bytes of base64url/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseKeyFile(text, 'k.key'), (err) => codeOf(err) === 'key_file_invalid' && message.test((err as Error).message), message.source);
  }
  // The message never carries the secret.
  const secretLine = /^secret (.*)$/m.exec(good)![1]!;
  try {
    parseKeyFile(good.replace(/^id .*$/m, 'id 0000000000000000'), 'k.key');
    assert.fail('a mismatched id was accepted');
  } catch (err) {
    assert.equal(codeOf(err), 'key_file_invalid');
    assert.ok(!(err as Error).message.includes(secretLine) && !JSON.stringify(err).includes(secretLine));
  }
});
