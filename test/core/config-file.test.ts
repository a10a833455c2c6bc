import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { ConfigError, configFileToUse, loadConfigFile, parseConfigText, unreadableMessage } from '../../core/config-file.ts';
import { EXIT, exitCodeFor } from '../../client/exit-codes.ts';
import { durationField, sizeField } from '../../core/config-fields.ts';
import { parseDuration, parseSize } from '../../core/units.ts';
import type { SnapferryError } from '../../core/errors.ts';

test('sizes: binary units, optional i/B, fractions only with a unit', () => {
  assert.equal(parseSize('1048576'), 1048576);
  assert.equal(parseSize('200k'), 200 * 1024);
  assert.equal(parseSize('4M'), 4 * 1024 ** 2);
  assert.equal(parseSize('4MiB'), 4 * 1024 ** 2);
  assert.equal(parseSize('500G'), 500 * 1024 ** 3);
  assert.equal(parseSize('2T'), 2 * 1024 ** 4);
  assert.equal(parseSize('1.5g'), 1.5 * 1024 ** 3);
  for (const bad of ['', 'k', '12.5', '4 gigs', '-1k', '1e6', '9999999P']) {
    assert.throws(() => parseSize(bad), (err: SnapferryError) => err.code === 'invalid_input', bad);
  }
});

test('durations: s m h d w, combined; a bare number is refused', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('30m'), 30 * 60_000);
  assert.equal(parseDuration('1h30m'), 90 * 60_000);
  assert.equal(parseDuration('7d'), 7 * 86_400_000);
  assert.equal(parseDuration('2w'), 14 * 86_400_000);
  assert.equal(parseDuration('0s'), 0);
  for (const bad of ['7', '', 'h', '1 h', '1y', '1.5h', 'hourly']) {
    assert.throws(() => parseDuration(bad), (err: SnapferryError) => err.code === 'invalid_input', bad);
  }
});

const Schema = z.strictObject({
  name: z.string(),
  size: sizeField().optional(),
  every: durationField().optional(),
  nested: z.strictObject({ list: z.array(z.number()).optional(), deep: z.strictObject({ n: z.number() }).optional() }).optional(),
});

test('a valid file becomes a frozen typed object, all the way down', () => {
  const config = parseConfigText('t.yaml', 'name: x\nsize: 4k\nevery: 1h\nnested:\n  list: [1, 2]\n  deep: { n: 3 }\n', Schema);
  assert.deepEqual(config, { name: 'x', size: 4096, every: 3_600_000, nested: { list: [1, 2], deep: { n: 3 } } });
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.nested) && Object.isFrozen(config.nested?.list) && Object.isFrozen(config.nested?.deep));
  assert.throws(() => {
    (config as { name: string }).name = 'y';
  }, TypeError);
});

function problemsOf(text: string): string[] {
  try {
    parseConfigText('t.yaml', text, Schema);
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.message.split('\n').slice(1);
  }
  assert.fail('expected a ConfigError');
}

test('each problem names the key path and the line of its key, in line order', () => {
  assert.deepEqual(problemsOf('# a comment\nname: x\nnested:\n  list: [1, two]\n  deep:\n    n: "3"\n    m: 4\nevery: soon\n'), [
    't.yaml:4: nested.list[1]: expected a number, found "two"',
    't.yaml:6: nested.deep.n: expected a number, found "3"',
    't.yaml:7: nested.deep.m: unknown key; the keys here are n',
    't.yaml:8: every: expected a duration like 90s, 30m, 1h, 1h30m, 7d or 2w, found "soon"',
  ]);
});

test('a missing key points at the map that should hold it; an empty file is an empty map', () => {
  assert.deepEqual(problemsOf(''), ['t.yaml:1: name: expected text, found nothing (the key is missing)']);
  assert.deepEqual(problemsOf('\n\nname: [x]\n'), ['t.yaml:3: name: expected text, found a list']);
  assert.deepEqual(problemsOf('- just\n- a list\n'), ['t.yaml:1: expected a map of settings, found a list']);
});

test('YAML syntax errors come with line and column; aliases that point nowhere are an error too', () => {
  assert.deepEqual(problemsOf('name: x\nnested:\n  list: [1, 2\nsize: 1k\n'), [
    't.yaml:4:1: Flow sequence in block collection must be sufficiently indented and end with a ]',
  ]);
  assert.deepEqual(problemsOf('name: x\n---\nname: y\n'), ['t.yaml:2:1: Source contains multiple documents; please use YAML.parseAllDocuments()']);
  assert.match(problemsOf('name: *nowhere\n')[0]!, /^t\.yaml:1:7: .*nowhere/);
});

test('loadConfigFile reads the file; an unreadable one is its own error, naming the file', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-config-file-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'c.yaml');
  await fs.writeFile(file, 'name: from-file\n');
  assert.deepEqual(await loadConfigFile(file, Schema), { name: 'from-file' });
  await assert.rejects(loadConfigFile(path.join(dir, 'missing.yaml'), Schema), (err: SnapferryError) => {
    assert.equal(err.code, 'config_unreadable');
    assert.match(err.message, /^the config file \S*missing\.yaml does not exist: check the path given with --config$/);
    assert.equal(exitCodeFor(err), EXIT.usage);
    return true;
  });
  await assert.rejects(loadConfigFile(dir, Schema), (err: SnapferryError) => {
    assert.equal(err.code, 'config_unreadable');
    assert.match(err.message, /is a folder, not a file/);
    assert.equal(exitCodeFor(err), EXIT.usage);
    return true;
  });
});

test('unreadableMessage says what went wrong with the file and what to do', () => {
  const errno = (code: string) => Object.assign(new Error(`${code}: boom`), { code });
  assert.match(unreadableMessage('/c.yaml', errno('EACCES')), /^the config file \/c\.yaml cannot be read by this user \(permission denied\): run the command as a user/);
  assert.match(unreadableMessage('/c.yaml', errno('ENOTDIR')), /does not exist \(a part of its path is not a folder\)/);
  assert.equal(unreadableMessage('/c.yaml', errno('EIO')), 'cannot read the config file /c.yaml: EIO: boom; check the path given with --config');
});

test('the default config file is used only when it exists, and never over an explicit one', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-config-default-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const fallback = path.join(dir, 'default.yaml');
  assert.equal(await configFileToUse(undefined, fallback), null);
  assert.equal(await configFileToUse('/given.yaml', fallback), '/given.yaml');
  await fs.writeFile(fallback, 'name: x\n');
  assert.equal(await configFileToUse(undefined, fallback), fallback);
  assert.equal(await configFileToUse('/given.yaml', fallback), '/given.yaml');
});
