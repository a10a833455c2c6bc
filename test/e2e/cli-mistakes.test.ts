// The mistakes people make when pointing the client at a server, through the command as a user runs it: each is
// said once, with what to do, and an exit code that tells a timer whether running again can help.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { createBtrfs, MIN_BTRFS_MIB, rootOnly } from '../fixtures/btrfs.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import { startNginx } from '../fixtures/nginx.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ServerApi } from '../../client/http/api.ts';
import * as btrfs from '../../core/btrfs/index.ts';
import { createPair } from './harness.ts';
import { unreachableServer } from '../fixtures/local-port.ts';

const BIN = path.resolve(import.meta.dirname, '../../bin/snapferry.js');
// No proxy from the environment: these talk to loopback.
const snapferry = (args: string[]) => execa('node', [BIN, ...args], { reject: false, timeout: 120_000, env: { HTTPS_PROXY: '', https_proxy: '' } });
const count = (text: string, what: string) => text.split(what).length - 1;

test('a server URL without its scheme, or with another scheme, is a usage error (2) that shows the URL to give', async () => {
  const bare = await snapferry(['status', '--server', '127.0.0.1:28480']);
  assert.equal(bare.exitCode, EXIT.usage, bare.stderr);
  assert.match(bare.stderr, /give the URL with its scheme, e\.g\. https:\/\/127\.0\.0\.1:28480/);
  assert.doesNotMatch(bare.stderr, /Invalid URL/);
  // WHATWG URL reads `backup:8080` as the scheme "backup:": the same mistake, the same message.
  const named = await snapferry(['status', '--server', 'backup:8080']);
  assert.equal(named.exitCode, EXIT.usage, named.stderr);
  assert.match(named.stderr, /e\.g\. https:\/\/backup:8080/);
  const ftp = await snapferry(['status', '--server', 'ftp://backup.example.net']);
  assert.equal(ftp.exitCode, EXIT.usage, ftp.stderr);
  assert.match(ftp.stderr, /scheme ftp: give an https:\/\//);
});

test('the same URL in a config file that does not validate is a usage error (2) too, with the line to fix', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sf-config-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'client.yaml');
  await fs.writeFile(config, 'server: 127.0.0.1:28480\nvolumes:\n  home: { snapshotDir: /nowhere }\n');
  const r = await snapferry(['status', '--config', config]);
  assert.equal(r.exitCode, EXIT.usage, r.stderr);
  assert.match(r.stderr, /client\.yaml is not valid/);
  assert.match(r.stderr, /:1: server/);
});

test('https:// to the plain-HTTP port of a server is not retryable (1) and says to use http:// or put nginx in front', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const wrong = server.url.replace(/^http:/, 'https:');
  const r = await snapferry(['status', '--server', wrong]);
  assert.equal(r.exitCode, EXIT.failed, r.stderr);
  assert.match(r.stderr, /speaks plain HTTP on that port, not HTTPS: use http:\/\/127\.0\.0\.1:\d+ .*put nginx in front/);
  assert.doesNotMatch(r.stderr, /SSL routines|wrong version number/);

  const s1 = await pair.snapshot('s1');
  const push = await snapferry(['push', '--server', wrong, '--volume', 'home', s1]);
  assert.equal(push.exitCode, EXIT.failed, push.stderr);
  assert.equal(count(push.stderr, 'speaks plain HTTP'), 1, push.stderr);
});

test('http:// to a server that terminates TLS itself is not retryable (1) and says to use https://', rootOnly, async (t) => {
  const certs = await createTestCertificates(t);
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer({ tls: { cert: certs.serverCert, key: certs.serverKey } });
  // It closes a plain-HTTP connection without a word: that read as an unreachable server, exit 75 for ever.
  const wrong = server.url.replace(/^https:/, 'http:');
  const r = await snapferry(['status', '--server', wrong]);
  assert.equal(r.exitCode, EXIT.failed, r.stderr);
  assert.match(r.stderr, /speaks HTTPS, not plain HTTP: give --server as https:\/\/127\.0\.0\.1:\d+/);
  assert.doesNotMatch(r.stderr, /other side closed/);
});

test('behind nginx: a server without --behind-proxy is named with the fix, once; a server that is down is a retryable 502 without its page', rootOnly, async (t) => {
  const certs = await createTestCertificates(t);
  const pair = await createPair(t, { fillMB: 1 });
  // The mistake: served behind a TLS-terminating proxy without --behind-proxy, so its upload URLs say http://.
  const server = await pair.startServer({ behindProxy: false });
  const nginx = await startNginx(t, { upstream: { host: '127.0.0.1', port: Number(new URL(server.url).port) }, cert: certs.serverCert, key: certs.serverKey });
  const s1 = await pair.snapshot('s1');

  const r = await snapferry(['push', '--server', nginx.url, '--ca-file', certs.caCert, '--volume', 'home', s1]);
  assert.equal(r.exitCode, EXIT.failed, r.stderr);
  assert.equal(count(r.stderr, '--behind-proxy'), 1, r.stderr);
  assert.match(r.stderr, /upload URL on plain http:\/\/.*start `snapferry serve` with --behind-proxy .* or set publicUrl/);
  assert.doesNotMatch(r.stderr, /Protocol "http:" not supported/);
  // The upload the server created for that push is ended, not left holding the volume until it expires.
  const listed = (await (await fetch(`${server.url}/v1/transfers`)).json()) as { transfers: { state: string }[] };
  assert.deepEqual(listed.transfers.map((x) => x.state), ['aborted'], JSON.stringify(listed));

  await server.close();
  for (const args of [['status'], ['push', '--volume', 'home', '--retries', '0', s1]]) {
    const down = await snapferry([...args, '--server', nginx.url, '--ca-file', certs.caCert]);
    assert.equal(down.exitCode, EXIT.temporary, `${args[0]}: ${down.stderr}`);
    assert.match(down.stderr, /answered 502: the snapferry server behind it is down/);
    assert.doesNotMatch(down.stderr, /<html|<center|nginx\//i);
    assert.doesNotMatch(down.stderr, /is --server the address/);
  }
});

test('a --chunk-size outside 64K..16M is refused (2) before anything is planned, also when there is nothing to send', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const base = ['--server', server.url, '--volume', 'home'];
  assert.equal((await snapferry(['push', ...base, s1])).exitCode, EXIT.ok);
  const api = new ServerApi({ server: server.url });
  const before = (await api.transfers()).transfers.length;
  // s1 is on the server: nothing to send, which let a bad value pass with exit 0.
  for (const size of ['0', '1', '17M', '1G']) {
    const r = await snapferry(['push', ...base, '--chunk-size', size, s1]);
    assert.equal(r.exitCode, EXIT.usage, `--chunk-size ${size}: ${r.stderr}`);
    assert.match(r.stderr, /chunk size must be .*64K\.\.16M.*\(see `snapferry push --help`\)/s);
  }
  const s2 = await pair.snapshot('s2');
  const dry = await snapferry(['push', ...base, '--dry-run', '--chunk-size', '17M', s2]);
  assert.equal(dry.exitCode, EXIT.usage, dry.stderr);
  assert.equal(dry.stdout, '', 'no plan printed');
  assert.equal((await api.transfers()).transfers.length, before, 'nothing was sent');
  // The limits themselves are values like any other.
  assert.equal((await snapferry(['push', ...base, '--chunk-size', '64K', s2])).exitCode, EXIT.ok);
});

test('a token file that group or others can read is refused (2) with the chmod that fixes it, from --token-file and from the config', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'snapferry-token-mode-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const token = path.join(dir, 'laptop.token');
  await fs.writeFile(token, 'abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG\n', { mode: 0o600 });
  const config = path.join(dir, 'client.yaml');
  await fs.writeFile(config, `server: ${await unreachableServer()}\ntokenFile: ${token}\n`, { mode: 0o600 });
  for (const mode of [0o644, 0o640, 0o604]) {
    await fs.chmod(token, mode);
    for (const args of [['status', '--server', await unreachableServer(), '--token-file', token], ['status', '--config', config], ['push', '--config', config, '--volume', 'v', '/nonexistent']]) {
      const r = await snapferry(args);
      assert.equal(r.exitCode, EXIT.usage, `${mode.toString(8)} ${args.join(' ')}: ${r.stderr}`);
      const file = token.replace(/[.]/g, '\\.');
      assert.match(r.stderr, new RegExp(`the token file ${file} is open to others \\(mode ${mode.toString(8)}\\).*: chmod 600 ${file}$`, 'm'), r.stderr);
    }
  }
  // 0600 and 0400 are the owner's alone: read, and the command goes on to the server (which is not there: 75).
  for (const mode of [0o600, 0o400]) {
    await fs.chmod(token, mode);
    const r = await snapferry(['status', '--server', await unreachableServer(), '--token-file', token]);
    assert.equal(r.exitCode, EXIT.temporary, `${mode.toString(8)}: ${r.stderr}`);
  }
});

test('a --config file that is missing, or a folder, is a config error (2) naming the path, for every command that takes --config', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-missing-config-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const missing = path.join(dir, 'missing.yaml');
  const commands = [
    ['serve'], ['push'], ['status'], ['snapshots'], ['abort', 'deadbeef'], ['restore', '--volume', 'home', 's1', path.join(dir, 'dest')],
    ['verify'], ['snapshot'], ['run'], ['prune'], ['prune-server'],
  ];
  for (const command of commands) {
    const r = await snapferry([...command, '--config', missing]);
    assert.equal(r.exitCode, EXIT.usage, `${command[0]}: ${r.stderr}`);
    assert.equal(r.stderr.trim(), `snapferry: the config file ${missing} does not exist: check the path given with --config`, command[0]);
  }
  const folder = await snapferry(['run', '--config', dir]);
  assert.equal(folder.exitCode, EXIT.usage, folder.stderr);
  assert.match(folder.stderr, /is a folder, not a file: give the path of the YAML file itself with --config/);
});

test('serve refuses a root off btrfs and a missing tokens file as mistakes (2), which systemd does not restart, and makes no root folder', rootOnly, async (t) => {
  const fs1 = await createBtrfs(t, { sizeMiB: MIN_BTRFS_MIB + 19 });
  const root = path.join(fs1.mountPoint, 'srv', 'root2');
  const tokens = path.join(fs1.mountPoint, 'tokens.json');
  const missing = await snapferry(['serve', '--root', root, '--listen', '127.0.0.1:0', '--tokens', tokens]);
  assert.equal(missing.exitCode, EXIT.usage, missing.stderr);
  assert.match(missing.stderr, /the tokens file .*tokens\.json does not exist; create it with `snapferry client add NAME --tokens /);
  await assert.rejects(fs.stat(path.join(fs1.mountPoint, 'srv')), { code: 'ENOENT' }, 'a refused start made the root folder');

  const ext4 = await fs.mkdtemp(path.join(os.tmpdir(), 'sf-ext4-root-'));
  t.after(() => fs.rm(ext4, { recursive: true, force: true }));
  const off = await snapferry(['serve', '--root', path.join(ext4, 'root'), '--listen', '127.0.0.1:0', '--no-auth']);
  assert.equal(off.exitCode, EXIT.usage, off.stderr);
  assert.match(off.stderr, /is not on a btrfs filesystem; give --root a folder on btrfs/);
  assert.deepEqual(await fs.readdir(ext4), []);
});

test('restore into folders that cannot take it is a usage error (2): a --parent-dir or DEST_DIR that does not exist says so, one off btrfs names its filesystem', rootOnly, async (t) => {
  const fs1 = await createBtrfs(t, { sizeMiB: MIN_BTRFS_MIB + 19 });
  // Refused before the server is asked: none listens there.
  const server = await unreachableServer();
  const restore = (dest: string, ...more: string[]) => snapferry(['restore', '--server', server, '--volume', 'home', 's1', dest, ...more]);
  // Not /nonexistent: this machine has one.
  const gone = path.join(os.tmpdir(), `sf-gone-${process.pid}`);
  const noParent = await restore(fs1.mountPoint, '--parent-dir', gone);
  assert.equal(noParent.exitCode, EXIT.usage, noParent.stderr);
  assert.ok(noParent.stderr.includes(`--parent-dir ${gone} does not exist`), noParent.stderr);
  assert.doesNotMatch(noParent.stderr, /ext4/);
  const noDest = await restore(path.join(fs1.mountPoint, 'nowhere'));
  assert.equal(noDest.exitCode, EXIT.usage, noDest.stderr);
  assert.match(noDest.stderr, /DEST_DIR .*nowhere does not exist/);
  const ext4 = await fs.mkdtemp(path.join(os.tmpdir(), 'sf-ext4-dest-'));
  t.after(() => fs.rm(ext4, { recursive: true, force: true }));
  const off = await restore(ext4);
  assert.equal(off.exitCode, EXIT.usage, off.stderr);
  assert.match(off.stderr, /DEST_DIR .* is on ext4, not btrfs/);
});

test('a --lock-file that is a folder, or under a file, is a usage error (2) naming the flag, not a bare EISDIR', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sf-lockfile-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'client.yaml');
  await fs.writeFile(config, `server: ${await unreachableServer()}\nvolumes:\n  home: { source: ${dir}/src, snapshotDir: ${dir}/snaps }\n`);
  for (const [lockFile, why] of [[dir, 'is a folder'], [path.join(config, 'run.lock'), 'is under a file, not a folder']] as const) {
    for (const command of ['run', 'prune']) {
      const r = await snapferry([command, '--config', config, '--lock-file', lockFile]);
      assert.equal(r.exitCode, EXIT.usage, `${command} --lock-file ${lockFile}: ${r.stderr}`);
      assert.ok(r.stderr.includes(`the run lock file ${lockFile} (--lock-file) ${why}: give --lock-file the path of a file`), r.stderr);
      assert.doesNotMatch(r.stderr, /EISDIR|ENOTDIR/);
    }
  }
});

test('a server URL given with the API\'s /v1 is a usage error (2) that names the base URL to give, not "no such endpoint: GET /v1/v1/status"', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  for (const given of [`${server.url}/v1`, `${server.url}/v1/`]) {
    const r = await snapferry(['status', '--server', given]);
    assert.equal(r.exitCode, EXIT.usage, r.stderr);
    assert.ok(r.stderr.includes(`the server URL ends in /v1, which snapferry adds itself; give the server's base URL without it: ${server.url}`), r.stderr);
  }
  const s1 = await pair.snapshot('s1');
  const push = await snapferry(['push', '--server', `${server.url}/v1`, '--volume', 'home', s1]);
  assert.equal(push.exitCode, EXIT.usage, push.stderr);
  assert.equal(count(push.stderr, 'ends in /v1'), 1, push.stderr);
});

test('a snapshotDir on another filesystem than the source is a usage error (2) that says it must be on the source\'s btrfs, not "Invalid cross-device link"', rootOnly, async (t) => {
  const [one, two] = [await createBtrfs(t, { sizeMiB: MIN_BTRFS_MIB + 19 }), await createBtrfs(t, { sizeMiB: MIN_BTRFS_MIB + 19 })];
  const source = path.join(one.mountPoint, 'data');
  await btrfs.createSubvolume(source);
  const config = path.join(one.mountPoint, 'client.yaml');
  // Not made yet: judged by the folder it would be made in.
  await fs.writeFile(config, `server: ${await unreachableServer()}\nvolumes:\n  home: { source: ${source}, snapshotDir: ${two.mountPoint}/snaps/home }\n`);
  for (const command of ['run', 'snapshot']) {
    const r = await snapferry([command, '--config', config]);
    assert.equal(r.exitCode, EXIT.usage, `${command}: ${r.stderr}`);
    assert.match(r.stderr + r.stdout, /snapshotDir of volume home, .*\/snaps\/home, is on another btrfs filesystem \(\/dev\/loop\d+\), not on the btrfs filesystem of its source .*data \(\/dev\/loop\d+\)/);
    assert.doesNotMatch(r.stderr + r.stdout, /cross-device/);
  }
  assert.deepEqual(await fs.readdir(two.mountPoint), [], 'nothing made on the other filesystem');
});

test('status --snapshots-dir VOLUME=DIR with a DIR that does not exist, or is a file, is a usage error (2) saying so, not a volume with no snapshot', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sf-status-dir-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'file');
  await fs.writeFile(file, '');
  // Refused before the server is asked: none listens on its port.
  for (const [given, said] of [[path.join(dir, 'gone'), `the folder ${path.join(dir, 'gone')} does not exist`], [file, `${file} is not a folder`]] as const) {
    const r = await snapferry(['status', '--server', await unreachableServer(), '--snapshots-dir', `bad=${given}`]);
    assert.equal(r.exitCode, EXIT.usage, r.stderr);
    assert.ok(r.stderr.includes(`${said}: give the folder that holds this machine's snapshots of bad`), r.stderr);
    assert.ok(r.stderr.includes('(see `snapferry status --help`)'), r.stderr);
  }
});

test('restore into a DEST_DIR that already has something of the snapshot\'s name is a usage error (2): the user moves it away or picks another folder', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const server = await pair.startServer();
  const s1 = await pair.snapshot('s1');
  const pushed = await snapferry(['push', '--server', server.url, '--volume', 'home', s1]);
  assert.equal(pushed.exitCode, EXIT.ok, pushed.stderr);
  const dest = path.join(pair.client.mountPoint, 'restored');
  await fs.mkdir(path.join(dest, 's1'), { recursive: true });
  const r = await snapferry(['restore', '--server', server.url, '--volume', 'home', 's1', dest]);
  assert.equal(r.exitCode, EXIT.usage, r.stderr);
  assert.match(r.stderr, /restored\/s1 already exists and is not s1 from the server; move it away or restore into another folder/);
});

test('client add of a name the tokens file has, and client remove of one it has not, are usage errors (2) that say what to do', async (t) => {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'sf-tokens-'));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const tokens = path.join(dir, 'tokens.json');
  assert.equal((await snapferry(['client', 'add', 'alice', '--tokens', tokens])).exitCode, EXIT.ok);
  const again = await snapferry(['client', 'add', 'alice', '--tokens', tokens]);
  assert.equal(again.exitCode, EXIT.usage, again.stderr);
  assert.match(again.stderr, /already has a client named alice; pick another name/);
  const gone = await snapferry(['client', 'remove', 'bob', '--tokens', tokens]);
  assert.equal(gone.exitCode, EXIT.usage, gone.stderr);
  assert.match(gone.stderr, /has no client named bob; `snapferry client list --tokens .*` shows who is there/);
});
