import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { loadServerConfig, retentionFor, serveSettings, type ServerConfig } from '../../server/config.ts';
import { parseConfigText } from '../../core/config-file.ts';
import { ServerConfigSchema } from '../../server/config.ts';
import { addClient } from '../../server/tokens.ts';
import { createBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { assertRejected, invalidSamples, readmeConfigExamples } from '../fixtures/configs/expect.ts';
import { ChildProcesses, freePort, SNAPFERRY_BIN } from '../e2e/processes.ts';
import type { SnapferryError } from '../../core/errors.ts';
import { EXIT } from '../../client/exit-codes.ts';

const EXAMPLE = path.resolve(import.meta.dirname, '../../deploy/server.example.yaml');
const config = (text: string): ServerConfig => parseConfigText('server.yaml', text, ServerConfigSchema);

test('deploy/server.example.yaml is valid, and says what its comments say', async () => {
  const c = await loadServerConfig(EXAMPLE);
  assert.equal(c.root, '/srv/snapferry');
  assert.deepEqual(c.listen, { host: '127.0.0.1', port: 8080 });
  assert.equal(c.behindProxy, true);
  assert.equal(c.tokens, '/etc/snapferry/tokens.json');
  assert.deepEqual(c.limits, { quota: 2 * 1024 ** 4, maxOpenUploads: 8 });
  assert.equal(c.expireAfter, 7 * 86_400_000);
  assert.equal(c.privilegedFiles, 'refuse');
  assert.deepEqual(retentionFor(c, 'laptop', 'home'), { daily: 30, monthly: 60 });
  assert.deepEqual(retentionFor(c, 'nas', 'photos'), {});
  assert.deepEqual(retentionFor(c, 'laptop', 'root'), { last: 10, hourly: 48, daily: 14, weekly: 8, monthly: 24 });
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.limits) && Object.isFrozen(c.volumes['laptop/home']?.retention));
});

test("the README's server config example is valid", async () => {
  const [example] = await readmeConfigExamples();
  const c = config(example!);
  assert.deepEqual(c.tls, { cert: '/etc/snapferry/tls/fullchain.pem', key: '/etc/snapferry/tls/privkey.pem' });
  assert.deepEqual(retentionFor(c, 'laptop', 'home'), { daily: 30, monthly: 60 });
});

for (const sample of await invalidSamples('server')) {
  test(`test/fixtures/configs/server/${path.basename(sample.file)} is refused with each problem's key and line`, () =>
    assertRejected(sample, loadServerConfig));
}

test('serve settings: flags over the config file over defaults', () => {
  const c = config('root: /srv/a\nlisten: 0.0.0.0:9000\ntokens: /etc/t.json\nlogLevel: warn\nexpireAfter: 2h\nidleTimeout: 90s\nprivilegedFiles: refuse\nlimits: { quota: 1G }\n');
  const fromFile = serveSettings({}, c);
  assert.equal(fromFile.logLevel, 'warn');
  assert.deepEqual(fromFile.options, {
    root: '/srv/a', host: '0.0.0.0', port: 9000, behindProxy: false, tokensFile: '/etc/t.json',
    expireAfterMs: 7_200_000, idleTimeoutMs: 90_000, privilegedFiles: 'refuse', limits: { quotaBytes: 1024 ** 3 },
  });

  const flags = serveSettings(
    { root: '/srv/b', listen: { host: '127.0.0.1', port: 1234 }, tokens: '/x.json', logLevel: 'debug', privilegedFiles: 'allow', expireAfterMs: 0, idleTimeoutMs: 5000 },
    c,
  );
  assert.equal(flags.logLevel, 'debug');
  assert.deepEqual(flags.options, {
    root: '/srv/b', host: '127.0.0.1', port: 1234, behindProxy: false, tokensFile: '/x.json',
    expireAfterMs: 0, idleTimeoutMs: 5000, privilegedFiles: 'allow', limits: { quotaBytes: 1024 ** 3 },
  });

  // Without a config file, the flags' own defaults.
  const bare = serveSettings({ root: '/srv/c', auth: false }, null);
  assert.deepEqual(bare, { logLevel: 'info', store: null, options: { root: '/srv/c', host: '127.0.0.1', port: 8080, behindProxy: false } });
});

test('serve settings stay secure by default: tokens, or --no-auth on loopback only, which beats the file\'s tokens', () => {
  const withTokens = config('root: /srv/a\ntokens: /etc/t.json\nlisten: 127.0.0.1:8080\n');
  assert.equal(serveSettings({ auth: false }, withTokens).options.tokensFile, undefined);
  assert.throws(() => serveSettings({ auth: false, tokens: '/t.json' }, withTokens), /--tokens FILE or --no-auth, not both/);

  const open = config('root: /srv/a\nlisten: 0.0.0.0:8080\n');
  assert.throws(() => serveSettings({}, open), /serve needs --tokens FILE or tokens: in its config file/);
  assert.throws(() => serveSettings({ auth: false }, open), /only allowed on a loopback address/);
  assert.throws(() => serveSettings({ auth: false }, config('root: /srv/a\nbehindProxy: true\n')), /cannot be used with --behind-proxy/);

  assert.throws(() => serveSettings({ auth: false }, null), (err: SnapferryError) => err.code === 'invalid_input' && /needs --root DIR/.test(err.message));
  assert.throws(() => serveSettings({ root: '/r', auth: false, tlsCert: '/c.pem' }, null), /--tls-cert and --tls-key go together/);
  assert.throws(() => serveSettings({ root: '/r', auth: false, logLevel: 'loud' }, null), /not a level/);

  const tls = config('root: /srv/a\ntokens: /t\ntls: { cert: /c.pem, key: /k.pem }\n');
  assert.deepEqual(serveSettings({}, tls).options.tls, { cert: '/c.pem', key: '/k.pem' });
  assert.deepEqual(serveSettings({ tlsCert: '/c2.pem', tlsKey: '/k2.pem' }, tls).options.tls, { cert: '/c2.pem', key: '/k2.pem' });
});

test('serve --config with a broken file exits 2 (usage, as for a wrong flag) and prints FILE:LINE: key', async () => {
  const bad = path.resolve(import.meta.dirname, '../fixtures/configs/server/bad-type.yaml');
  const r = await execa('node', [SNAPFERRY_BIN, 'serve', '--config', bad], { reject: false, timeout: 60_000 });
  assert.equal(r.exitCode, EXIT.usage, r.stderr);
  assert.match(r.stderr, /bad-type\.yaml:5: behindProxy: expected true or false, found "yes"/);
});

test('a size written right but too large for a count of bytes is said to be too large, not written wrong', () => {
  assert.throws(() => config('root: /srv/a\ntokens: /t\nlimits: { quota: 99999999T }\n'), /limits\.quota: expected a size like .*; this one is too large \(at most 8P\), found "99999999T"/);
  assert.throws(() => config('root: /srv/a\ntokens: /t\nlimits: { quota: 99999999999999999999 }\n'), /limits\.quota: .*this one is too large \(at most 8P\)/);
  assert.throws(() => config('root: /srv/a\ntokens: /t\nlimits: { quota: 4 apples }\n'), /limits\.quota: expected a size like 4M, 200k, 500G or 1048576, at least 1 byte, found "4 apples"$/m);
});

test('serve --idle-timeout longer than a timer holds (24.8 days) exits 2 and says the maximum, before it starts', async () => {
  const r = await execa('node', [SNAPFERRY_BIN, 'serve', '--root', '/nonexistent', '--no-auth', '--idle-timeout', '4w'], { reject: false, timeout: 60_000 });
  assert.equal(r.exitCode, EXIT.usage, r.stderr);
  assert.match(r.stderr, /"4w" is too long a timeout: at most 24d/);
  assert.doesNotMatch(r.stderr, /TimeoutOverflowWarning/);
});

test('serve --config: the file sets the server up; --listen, --no-auth and --privileged-files override it', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const disk = await createBtrfs(t, { sizeMiB: 128 });
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-config-serve-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const tokens = path.join(dir, 'tokens.json');
  const { token } = await addClient(tokens, 'laptop');
  const root = path.join(disk.mountPoint, 'root');
  const port = await freePort();
  const file = path.join(dir, 'server.yaml');
  // The loop mount is not nosuid,nodev: inert-mount refuses to start there, which shows that the key took effect.
  await fs.writeFile(file, `root: ${root}\nlisten: 127.0.0.1:${port}\ntokens: ${tokens}\nprivilegedFiles: inert-mount\nexpireAfter: 1h\n`);

  const refused = children.run(['serve', '--config', file]);
  assert.equal((await refused.exited).code, 1, refused.stderr);
  assert.match(refused.stderr, /refusing to start: .*nosuid,nodev/);

  const fromFile = children.run(['serve', '--config', file, '--privileged-files', 'allow']);
  const [, servedRoot, url] = await fromFile.waitForStderr(/snapferry serving (\S+) on (http:\/\/\S+)/, 30_000);
  assert.equal(servedRoot, root);
  assert.equal(url, `http://127.0.0.1:${port}`);
  assert.equal((await fetch(`${url}/v1/status`)).status, 401, 'the tokens file of the config is in force');
  const ok = await fetch(`${url}/v1/status`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(ok.status, 200);
  assert.equal(((await ok.json()) as { service: string }).service, 'snapferry');
  process.kill(fromFile.pid, 'SIGTERM');
  assert.equal((await fromFile.exited).code, 0);

  const otherPort = await freePort();
  const flags = children.run(['serve', '--config', file, '--privileged-files', 'allow', '--listen', `127.0.0.1:${otherPort}`, '--no-auth']);
  const [, , otherUrl] = await flags.waitForStderr(/snapferry serving (\S+) on (http:\/\/\S+)/, 30_000);
  assert.equal(otherUrl, `http://127.0.0.1:${otherPort}`);
  assert.equal((await fetch(`${otherUrl}/v1/status`)).status, 200, '--no-auth overrides the tokens of the config');
  process.kill(flags.pid, 'SIGTERM');
  await flags.exited;
});

test('serve settings: the creation rate and how long the catalog keeps ended transfers come from the config file', () => {
  const c = config('root: /srv/a\ntokens: /t.json\nlimits: { creationsPerMinute: 10, creationBurst: 20 }\nendedTransfers: { keepFor: 2d, maxPerClient: 50 }\n');
  const settings = serveSettings({}, c);
  assert.equal(settings.store, null);
  const options = settings.store === null ? settings.options : assert.fail('a btrfs server');
  assert.deepEqual(options.limits, { creationsPerMinute: 10, creationBurst: 20 });
  assert.deepEqual(options.endedTransfers, { keepForMs: 2 * 86_400_000, maxPerClient: 50 });
  const none = serveSettings({}, config('root: /srv/a\ntokens: /t.json\n')).options;
  assert.ok(!('limits' in none) && !('endedTransfers' in none), 'keys left out take the server\'s defaults');
});
