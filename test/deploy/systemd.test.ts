/**
 * The systemd units of deploy/systemd: what they run exists in the CLI, they point at the config files the CLI reads
 * by default and at the root the example config names, they keep their hardening, and systemd itself accepts them.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { DEFAULT_SERVER_CONFIG, loadServerConfig } from '../../server/config.ts';
import { DEFAULT_CLIENT_CONFIG } from '../../client/config.ts';
import { SNAPFERRY_BIN } from '../e2e/processes.ts';
import { EXIT } from '../../client/exit-codes.ts';
// Where the .deb installs the command (and `npm install -g` with NodeSource's node, whose prefix is /usr).
import { INSTALLED_BIN } from '../../packaging/deb.mjs';

const DIR = path.resolve(import.meta.dirname, '../../deploy/systemd');

type Unit = Map<string, Map<string, string[]>>;

/** systemd's INI dialect, as far as these units use it: sections, repeated keys, # and ; comments. */
async function readUnit(name: string): Promise<Unit> {
  const unit: Unit = new Map();
  let section: Map<string, string[]> | undefined;
  for (const [i, raw] of (await fs.readFile(path.join(DIR, name), 'utf8')).split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(\w+)\]$/.exec(line);
    if (header) {
      section = new Map();
      unit.set(header[1]!, section);
      continue;
    }
    const kv = /^(\w+)=(.*)$/.exec(line);
    assert.ok(kv && section, `${name}:${i + 1}: not KEY=VALUE inside a section: ${raw}`);
    section.set(kv[1]!, [...(section.get(kv[1]!) ?? []), kv[2]!]);
  }
  return unit;
}

function value(unit: Unit, section: string, key: string): string | undefined {
  return unit.get(section)?.get(key)?.at(-1);
}

/** `snapferry CMD --help` succeeds and lists every option the unit passes. */
async function assertRunnable(execStart: string): Promise<string[]> {
  const [bin, command, ...args] = execStart.split(/\s+/);
  assert.equal(bin, INSTALLED_BIN);
  const help = await execa('node', [SNAPFERRY_BIN, command!, '--help'], { reject: false });
  assert.equal(help.exitCode, 0, `snapferry ${command} does not exist: ${help.stderr}`);
  for (const option of args.filter((a) => a.startsWith('--'))) assert.match(help.stdout, new RegExp(`${option} `), `snapferry ${command} has no ${option}`);
  return args;
}

test('the server unit runs `snapferry serve --config` on the default server config, as root, hardened', async () => {
  const unit = await readUnit('snapferry-server.service');
  const args = await assertRunnable(value(unit, 'Service', 'ExecStart')!);
  assert.deepEqual(args, ['--config', DEFAULT_SERVER_CONFIG]);
  // Writable: the root of the example config, and nothing else.
  const example = await loadServerConfig(path.resolve(import.meta.dirname, '../../deploy/server.example.yaml'));
  // "-": a root not made yet is snapferry's to say (not on btrfs, not there), not a namespace error of systemd's.
  assert.equal(value(unit, 'Service', 'ReadWritePaths'), `-${example.root}`);
  assert.equal(value(unit, 'Service', 'ProtectSystem'), 'strict');
  for (const key of ['ProtectHome', 'PrivateTmp', 'NoNewPrivileges', 'ProtectKernelTunables', 'ProtectKernelModules', 'ProtectControlGroups', 'RestrictNamespaces']) {
    assert.equal(value(unit, 'Service', key), 'yes', key);
  }
  const caps = value(unit, 'Service', 'CapabilityBoundingSet')!.split(' ');
  // What btrfs receive --chroot needs to recreate a tree as it was (see the unit's header comment), and no more.
  assert.deepEqual(caps.sort(), ['CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_DAC_READ_SEARCH', 'CAP_FOWNER', 'CAP_FSETID', 'CAP_MKNOD', 'CAP_SETFCAP', 'CAP_SYS_ADMIN', 'CAP_SYS_CHROOT']);
  assert.match(value(unit, 'Service', 'SystemCallFilter')!, /\bchroot\b/);
  assert.equal(value(unit, 'Service', 'RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6');
  assert.equal(value(unit, 'Install', 'WantedBy'), 'multi-user.target');
});

test('the client service runs `snapferry run --config` once per start; the timer starts it hourly', async () => {
  const service = await readUnit('snapferry-client.service');
  assert.equal(value(service, 'Service', 'Type'), 'oneshot');
  assert.deepEqual(await assertRunnable(value(service, 'Service', 'ExecStart')!), ['--config', DEFAULT_CLIENT_CONFIG]);
  assert.equal(value(service, 'Service', 'TimeoutStartSec'), 'infinity', 'a first seed takes days');
  assert.equal(value(service, 'Service', 'KillSignal'), 'SIGINT', 'a stopped run stops like Ctrl-C');
  assert.equal(value(service, 'Service', 'NoNewPrivileges'), 'yes');
  // Snapshots of a subvolume root does not own (a user's own /home/alice) need CAP_FOWNER: btrfs checks the owner.
  assert.ok(value(service, 'Service', 'CapabilityBoundingSet')!.split(' ').includes('CAP_FOWNER'));
  assert.equal(service.get('Install'), undefined, 'the timer starts it, not a target');

  const timer = await readUnit('snapferry-client.timer');
  assert.equal(value(timer, 'Timer', 'OnCalendar'), 'hourly');
  assert.equal(value(timer, 'Timer', 'Persistent'), 'true');
  assert.ok(value(timer, 'Timer', 'RandomizedDelaySec'));
  assert.equal(value(timer, 'Timer', 'Unit') ?? 'snapferry-client.service', 'snapferry-client.service');
  assert.equal(value(timer, 'Install', 'WantedBy'), 'timers.target');
});

test('systemd-analyze verify accepts the units', async (t) => {
  const probe = await execa('systemd-analyze', ['--version'], { reject: false });
  if (probe.exitCode !== 0) return t.skip('systemd-analyze is not installed');
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), `snapferry-systemd-${process.pid}-`));
  t.after(() => fs.rm(dir, { recursive: true, force: true }));
  const names = (await fs.readdir(DIR)).sort();
  for (const name of names) {
    // verify checks that ExecStart's program exists: point it at this checkout's.
    const text = (await fs.readFile(path.join(DIR, name), 'utf8')).replaceAll(INSTALLED_BIN, SNAPFERRY_BIN);
    await fs.writeFile(path.join(dir, name), text);
  }
  const r = await execa('systemd-analyze', ['verify', ...names.map((n) => path.join(dir, n))], { reject: false });
  // verify warns about unknown keys and bad values on stderr but still exits 0: any output is a finding.
  assert.equal(`${r.stdout}${r.stderr}`.trim(), '', `systemd-analyze verify:\n${r.stderr}`);
  assert.equal(r.exitCode, 0);
});

test('the README and the units start the client service by hand with --no-block: a oneshot start waits out the whole run', async () => {
  const service = await readUnit('snapferry-client.service');
  assert.equal(value(service, 'Service', 'Type'), 'oneshot');
  const texts = [
    ['README.md', await fs.readFile(path.resolve(import.meta.dirname, '../../README.md'), 'utf8')],
    ...(await Promise.all((await fs.readdir(DIR)).map(async (n) => [n, await fs.readFile(path.join(DIR, n), 'utf8')]))),
  ];
  let starts = 0;
  for (const [name, text] of texts) {
    for (const m of text!.matchAll(/systemctl\s+(?:--\S+\s+)*(?:re)?start\b[^\n`]*\bsnapferry-client(?:\.service)?(?![.\w-])/g)) {
      starts += 1;
      assert.match(m[0], /--no-block/, `${name}: ${m[0]}`);
    }
  }
  assert.ok(starts > 0, 'the README says how to start a first run now');
  assert.match(texts[0]![1]!, /journalctl -fu snapferry-client\b/, 'and how to follow it');
});

test('the README\'s server roots are the one the server unit may write', async () => {
  const unit = await readUnit('snapferry-server.service');
  const writable = value(unit, 'Service', 'ReadWritePaths')!.replace(/^-/, '');
  const readme = await fs.readFile(path.resolve(import.meta.dirname, '../../README.md'), 'utf8');
  const roots = [...readme.matchAll(/(?:--root\s+|^root:\s*)(\/\S+)/gm)].map((m) => m[1]);
  assert.ok(roots.length > 0);
  // Another root needs `systemctl edit snapferry-server` (the README says how), so its examples keep to this one.
  assert.deepEqual([...new Set(roots)], [writable]);
});

test('a unit that restarts on failure does not restart what exits 2 (a config, a root or a key to fix) every 10 s for ever', async () => {
  const server = await readUnit('snapferry-server.service');
  assert.equal(value(server, 'Service', 'Restart'), 'on-failure', 'a crash or a lost disk heals with a restart');
  assert.ok((value(server, 'Service', 'RestartPreventExitStatus') ?? '').split(/\s+/).includes(String(EXIT.usage)));
  // The client does not restart itself: the timer runs it again within the hour.
  const client = await readUnit('snapferry-client.service');
  assert.equal(value(client, 'Service', 'Restart') ?? 'no', 'no');
});
