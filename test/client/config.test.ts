import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { ClientConfigSchema, clientSettings, loadClientConfig, pushJobs, type ClientConfig } from '../../client/config.ts';
import { parseConfigText } from '../../core/config-file.ts';
import { FETCH_BAD_PORTS } from '../../core/server-url.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { rootOnly } from '../fixtures/btrfs.ts';
import { assertRejected, invalidSamples, readmeConfigExamples } from '../fixtures/configs/expect.ts';
import { assertReceived, createPair } from '../e2e/harness.ts';
import { SNAPFERRY_BIN } from '../e2e/processes.ts';
import { unreachableServer } from '../fixtures/local-port.ts';

const EXAMPLE = path.resolve(import.meta.dirname, '../../deploy/client.example.yaml');
const config = (text: string): ClientConfig => parseConfigText('client.yaml', text, ClientConfigSchema);
const snapferry = (args: string[]) =>
  execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 180_000, env: { SNAPFERRY_TOKEN: '' } });

test('deploy/client.example.yaml is valid, and says what its comments say', async () => {
  const c = await loadClientConfig(EXAMPLE);
  assert.equal(c.server, 'https://backup.example.net');
  assert.equal(c.tokenFile, '/etc/snapferry/token');
  assert.equal(c.limitRate, 200 * 1024);
  assert.equal(c.compress, 'auto');
  assert.equal(c.sendCompressed, 'auto');
  assert.equal(c.retries, 20);
  assert.deepEqual(Object.keys(c.volumes), ['home', 'root']);
  assert.deepEqual(c.volumes.home, {
    source: '/home', snapshotDir: '/.snapshots/home', snapshotEvery: 3_600_000, retention: { last: 5, hourly: 24, daily: 7 },
  });
  assert.equal(c.volumes.root?.snapshotEvery, 86_400_000);
  assert.ok(Object.isFrozen(c) && Object.isFrozen(c.volumes) && Object.isFrozen(c.volumes.home?.retention));
});

test("the README's client config example is valid", async () => {
  const [, example] = await readmeConfigExamples();
  const c = config(example!);
  assert.equal(c.caFile, '/etc/snapferry/ca.pem');
  assert.equal(c.volumes.home?.snapshotEvery, 3_600_000);
});

for (const sample of await invalidSamples('client')) {
  test(`test/fixtures/configs/client/${path.basename(sample.file)} is refused with each problem's key and line`, () =>
    assertRejected(sample, loadClientConfig));
}

test('a server URL with a query or fragment is refused, as a flag and in the config; one with a path is taken', () => {
  assert.throws(() => config('server: "https://h/p#top"\n'), /server: the server "https:\/\/h\/p#top" has a fragment \(#\.\.\.\).*give the URL without it, e\.g\. "https:\/\/h\/p"/);
  assert.throws(() => clientSettings({ server: 'https://h/some/path?x=1' }, null), /has a query \(\?\.\.\.\), which snapferry cannot send/);
  assert.equal(config('server: https://h:8443/some/path\n').server, 'https://h:8443/some/path');
});

test('a server URL with credentials is refused (exit 2, --token-file named); empty path segments are dropped', async () => {
  assert.throws(() => clientSettings({ server: 'https://user:pass@h' }, null), /given with credentials \(user:password@\), which snapferry does not use: give the URL without them, e\.g\. "https:\/\/h", and the client's token with --token-file/);
  assert.throws(() => config('server: https://user@h/sf\n'), /server: the server "h" is given with credentials.*"https:\/\/h\/sf"/);
  assert.equal(clientSettings({ server: 'https://h//' }, null).server, 'https://h');
  assert.equal(clientSettings({ server: 'https://h:8443//sf//' }, null).server, 'https://h:8443/sf');
  assert.equal(config('server: https://h/sf/\n').server, 'https://h/sf');
  const flag = await snapferry(['status', '--server', 'https://user:pass@127.0.0.1:9']);
  assert.equal(flag.exitCode, EXIT.usage, flag.stderr);
  assert.doesNotMatch(flag.stderr, /cannot reach/);
});

test("a server URL on a port the client's HTTP library blocks (fetch's bad ports) is refused at once (exit 2), as a flag and in the config", async () => {
  assert.throws(() => clientSettings({ server: 'http://127.0.0.1:6000' }, null), /the server "127\.0\.0\.1:6000" is on port 6000, which the client's HTTP library \(fetch\) blocks.*use another port/);
  assert.throws(() => config('server: https://backup:10080/sf\n'), /server: the server "backup:10080" is on port 10080, which the client's HTTP library \(fetch\) blocks/);
  assert.equal(config('server: https://backup:8443\n').server, 'https://backup:8443');
  // Before, it was "bad port; trying again" until the retries ran out: exit 75, as for a server that is down.
  const started = Date.now();
  const flag = await snapferry(['status', '--server', 'http://127.0.0.1:6000']);
  assert.equal(flag.exitCode, EXIT.usage, flag.stderr);
  assert.match(flag.stderr, /is on port 6000, which the client's HTTP library \(fetch\) blocks/);
  assert.doesNotMatch(flag.stderr, /trying again|cannot reach/);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
});

test("the ports refused are undici's own list (the Fetch standard's bad ports): an upgrade that changes it changes them", async () => {
  // @ts-expect-error: undici's internal module, which has no types; read here only to hold the two lists together.
  const { badPorts } = (await import('undici/lib/web/fetch/constants.js')) as { badPorts: readonly string[] };
  assert.deepEqual([...FETCH_BAD_PORTS].sort(), [...badPorts].sort());
});

test('stallTimeout takes what --stall-timeout takes: at least a second', async () => {
  assert.equal(config('server: http://s\nstallTimeout: 1s\n').stallTimeout, 1000);
  assert.throws(() => config('server: http://s\nstallTimeout: 0s\n'), /stallTimeout: expected a duration of at least 1s and at most 24d, like 30s or 2m, found "0s"/);
  const flag = await snapferry(['push', '--server', await unreachableServer(), '--volume', 'v', '--stall-timeout', '0s', '/nonexistent']);
  assert.equal(flag.exitCode, EXIT.usage);
  assert.match(flag.stderr, /expected a duration of at least 1s and at most 24d, like 30s or 2m/);
});

test('a stall timeout longer than a timer holds (2^31-1 ms, 24.8 days) is refused, as a flag and in the config', async () => {
  assert.equal(config('server: http://s\nstallTimeout: 24d\n').stallTimeout, 24 * 86_400_000);
  assert.throws(() => config('server: http://s\nstallTimeout: 25d\n'), /stallTimeout: expected a duration of at least 1s and at most 24d, like 30s or 2m, found "25d"/);
  const flag = await snapferry(['push', '--server', await unreachableServer(), '--volume', 'v', '--stall-timeout', '25d', '/nonexistent']);
  assert.equal(flag.exitCode, EXIT.usage);
  assert.match(flag.stderr, /"25d" is too long a timeout: at most 24d/);
  assert.doesNotMatch(flag.stderr, /TimeoutOverflowWarning/);
});

test('a volume name too long for its snapshots\' names is refused, as a config key and as push --volume', async () => {
  const volume = (name: string) => `server: http://s\nvolumes:\n  ${name}:\n    source: /a\n    snapshotDir: /b\n`;
  assert.deepEqual(Object.keys(config(volume('v'.repeat(238))).volumes), ['v'.repeat(238)]);
  assert.throws(() => config(volume('v'.repeat(239))), /client\.yaml:3: volumes\.v+: expected a volume name of at most 238 characters, so that its snapshots' names \(<volume>\.YYYYMMDDTHHMMSSZ\) fit btrfs's 255; this one has 239/);
  const flag = await snapferry(['push', '--server', await unreachableServer(), '--volume', 'v'.repeat(239), '/nonexistent']);
  assert.equal(flag.exitCode, EXIT.usage);
  assert.match(flag.stderr, /is 239 characters long: a volume name has at most 238 characters/);
});

test('push --config reports every mistake of the file in one run, each with its line (exit 2)', async () => {
  const sample = path.resolve(import.meta.dirname, '../fixtures/configs/client/bad-all-at-once.yaml');
  const expected = (await invalidSamples('client')).find((s) => s.file === sample)!.expected;
  const run = await snapferry(['push', '--config', sample]);
  assert.equal(run.exitCode, EXIT.usage, run.stderr);
  assert.match(run.stderr, /is not valid \(6 problems\):/);
  for (const line of expected) assert.ok(run.stderr.includes(line), `missing from the one report: ${line}\n${run.stderr}`);
});

test('compress and limitRate take what the flags take', () => {
  assert.equal(config('server: http://s\ncompress: none\n').compress, 0);
  assert.equal(config('server: http://s\ncompress: 7\n').compress, 7);
  assert.equal(config('server: http://s\ncompress: "19"\n').compress, 19);
  assert.equal(config('server: http://s\nlimitRate: 1M/s\n').limitRate, 1024 ** 2);
  assert.equal(config('server: http://s\nlimitRate: 4096\n').limitRate, 4096);
  assert.throws(() => config('server: http://s\nlimitRate: 0\n'), /client\.yaml:2: limitRate: expected a rate/);
});

test('client settings: flags over the config file over defaults', () => {
  const c = config('server: https://a.example\ntokenFile: /t\nlimitRate: 100k\ncompress: 3\nsendCompressed: off\nretries: 5\nstallTimeout: 45s\n');
  assert.deepEqual(clientSettings({}, c), {
    server: 'https://a.example', tokenFile: '/t', limitRate: 102400, compress: 3, sendCompressed: 'off', retries: 5, stallTimeout: 45_000,
  });
  assert.deepEqual(clientSettings({ server: 'https://b.example', tokenFile: '/u', caFile: '/ca.pem', limitRate: 1, compress: 'auto', sendCompressed: 'on', retries: 0, stallTimeout: 5000 }, c), {
    server: 'https://b.example', tokenFile: '/u', caFile: '/ca.pem', limitRate: 1, compress: 'auto', sendCompressed: 'on', retries: 0, stallTimeout: 5000,
  });
  assert.deepEqual(clientSettings({ server: 'http://c' }, null), { server: 'http://c', compress: 'auto', sendCompressed: 'auto' });
  assert.throws(() => clientSettings({}, null), /give --server URL, or a config file with server:/);
});

test('push jobs: snapshots on the command line go to --volume; without them, the configured volumes', () => {
  const c = config('server: http://s\nvolumes:\n  home: { source: /home, snapshotDir: /snaps/home }\n  root: { source: /, snapshotDir: /snaps/root }\n');
  assert.deepEqual(pushJobs(['/snaps/x'], 'v', c), [{ volume: 'v', snapshots: ['/snaps/x'] }]);
  assert.deepEqual(pushJobs(['/snaps/x'], 'v', null), [{ volume: 'v', snapshots: ['/snaps/x'] }]);
  assert.throws(() => pushJobs(['/snaps/x'], undefined, c), /give --volume NAME: .*not all in one of the config's snapshotDir folders/);
  assert.throws(() => pushJobs(['/snaps/x'], undefined, null), /give --volume NAME: the volume on the server these snapshots go to$/);
  // Snapshots in one volume's snapshotDir (or the folder itself) are that volume's: the config already says it.
  assert.deepEqual(pushJobs(['/snaps/home/home.20261206T010000Z', '/snaps/home/'], undefined, c), [
    { volume: 'home', snapshots: ['/snaps/home/home.20261206T010000Z', '/snaps/home/'] },
  ]);
  assert.throws(() => pushJobs(['/snaps/home/a', '/snaps/root/b'], undefined, c), /give --volume NAME/);
  assert.deepEqual(pushJobs([], undefined, c), [
    { volume: 'home', snapshots: ['/snaps/home'], snapshotDir: true },
    { volume: 'root', snapshots: ['/snaps/root'], snapshotDir: true },
  ]);
  assert.deepEqual(pushJobs([], 'root', c), [{ volume: 'root', snapshots: ['/snaps/root'], snapshotDir: true }]);
  assert.throws(() => pushJobs([], 'usr', c), /volume usr is not in the config file: it has home, root/);
  assert.throws(() => pushJobs([], undefined, null), /give the snapshots to push/);
  assert.throws(() => pushJobs([], undefined, config('server: http://s\n')), /has no volumes/);
});

test('push --config pushes every configured volume, flags override the file, status --config reads it', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 2 });
  const server = await pair.startServer();
  await pair.snapshot('s1');
  const empty = path.join(pair.client.mountPoint, 'no-snapshots-here');
  await fs.mkdir(empty);
  const file = path.join(pair.client.mountPoint, 'client.yaml');
  await fs.writeFile(
    file,
    [
      `server: ${server.url}`,
      'compress: 3',
      'volumes:',
      `  home: { source: ${pair.source}, snapshotDir: ${pair.snaps}, snapshotEvery: 1h }`,
      `  empty: { source: ${pair.source}, snapshotDir: ${empty} }`,
      '',
    ].join('\n'),
  );

  // --server beats the file's server: nothing listens on its port.
  const elsewhere = await snapferry(['push', '--config', file, '--volume', 'home', '--server', await unreachableServer()]);
  assert.equal(elsewhere.exitCode, EXIT.temporary, elsewhere.stderr);
  assert.match(elsewhere.stderr, /cannot reach/);

  // No snapshots given: every volume, each under its own name; the one that fails does not stop the other.
  const all = await snapferry(['push', '--config', file]);
  assert.notEqual(all.exitCode, EXIT.ok, all.stderr);
  assert.match(all.stderr, /^home: done: 1 snapshot\(s\) received by the server \(s1\)$/m);
  assert.match(all.stderr, /^snapferry: empty: no snapshots yet in .*no-snapshots-here \(take one with `snapferry snapshot`\)$/m);
  await assertReceived(path.join(pair.snaps, 's1'), pair.receivedPath('home', 's1'));

  const one = await snapferry(['push', '--config', file, '--volume', 'home']);
  assert.equal(one.exitCode, EXIT.ok, one.stderr);
  assert.match(one.stderr, /^done: the server already holds everything$/m);

  const status = await snapferry(['status', '--config', file, '--json']);
  assert.equal(status.exitCode, EXIT.ok, status.stderr);
  const report = JSON.parse(status.stdout) as { server: { url: string }; volumes: { name: string; snapshots: number; local: { dir: string } | null }[] };
  assert.equal(report.server.url, server.url);
  const home = report.volumes.find((v) => v.name === 'home');
  assert.equal(home?.snapshots, 1);
  assert.equal(home.local?.dir, pair.snaps, "the config's snapshotDir is where status looks for local snapshots");
});

test('verify: off, newest or { sample: N }, at the top and per volume; anything else names the key and what it takes', () => {
  const base = 'server: https://backup.example.net\n';
  assert.equal(config(`${base}`).verify, undefined, 'off by default');
  assert.equal(config(`${base}verify: off\n`).verify, null);
  assert.deepEqual(config(`${base}verify: newest\n`).verify, { sample: 0, readData: false });
  assert.deepEqual(config(`${base}verify: { sample: 3, readData: true }\n`).verify, { sample: 3, readData: true });
  const volume = config(`${base}volumes:\n  home:\n    source: /home\n    snapshotDir: /s\n    verify: { sample: 1 }\n`);
  assert.deepEqual(volume.volumes.home?.verify, { sample: 1, readData: false });
  assert.throws(() => config(`${base}verify: sometimes\n`), /client\.yaml:2: verify: expected off, newest, or \{ sample: N \}.*found "sometimes"/);
  assert.throws(() => config(`${base}verify: { sample: -1 }\n`), /verify\.sample: expected a number >= 0, found -1/);
  assert.throws(() => config(`${base}verify: { every: 2 }\n`), /verify/);
});

test("a config's server without its scheme gets the same fix as --server: give the URL with its scheme", () => {
  assert.throws(() => config('server: 127.0.0.1:28480\n'), /client\.yaml:1: server: the server "127\.0\.0\.1:28480" has no scheme: give the URL with its scheme, e\.g\. https:\/\/127\.0\.0\.1:28480/);
  assert.throws(() => config('server: ftp://backup.example.net\n'), /server: the server "ftp:\/\/backup\.example\.net" has the scheme ftp/);
  assert.throws(() => config('server: 8080\n'), /server: expected an http:\/\/ or https:\/\/ URL/);
});

test('snapshot refuses a snapshotDir in the subvolume of its source, saying why; one that is a subvolume of its own is taken', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const inside = path.join(pair.source, '.snapshots');
  const file = path.join(pair.client.mountPoint, 'client.yaml');
  await fs.writeFile(file, `server: ${await unreachableServer()}\nvolumes:\n  home: { source: ${pair.source}, snapshotDir: ${inside} }\n`);
  const refused = await snapferry(['snapshot', '--config', file, '--volume', 'home']);
  assert.equal(refused.exitCode, EXIT.usage, refused.stderr);
  assert.match(`${refused.stdout}${refused.stderr}`, /the snapshotDir of volume home, \S+\/data\/\.snapshots, is inside its source \S+\/data, in the same subvolume: each snapshot would be taken into the subvolume it is of/);
  assert.deepEqual(await fs.readdir(pair.source).then((names) => names.filter((n) => n === '.snapshots')), [], 'nothing was made in the source');

  await execa('btrfs', ['subvolume', 'create', inside]);
  const taken = await snapferry(['snapshot', '--config', file, '--volume', 'home']);
  assert.equal(taken.exitCode, 0, taken.stderr);
  assert.equal((await fs.readdir(inside)).length, 1);
  await execa('btrfs', ['subvolume', 'delete', path.join(inside, (await fs.readdir(inside))[0]!), inside]);
});
