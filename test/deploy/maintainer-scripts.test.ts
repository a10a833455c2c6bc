/**
 * The .deb's maintainer scripts, taken out of the built package with dpkg-deb -e and run with systemctl,
 * deb-systemd-invoke and deb-systemd-helper replaced by stubs that write down how they were called, and the test for
 * a running systemd (/run/systemd/system) pointed at a folder that is there or not: what dpkg -r, -P, an upgrade and
 * a first install do to the units, on a machine with systemd and on one without (a container).
 */
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { execa } from 'execa';
import { buildDeb } from '../../packaging/deb.mjs';
import { builtCopy, tempDir } from './package-copy.ts';

const SERVICES = 'snapferry-client.service snapferry-server.service';
const STOP_ORDER = `snapferry-client.timer ${SERVICES}`;
const LINKED = 'snapferry-client.timer snapferry-server.service';

interface Sandbox {
  /** Runs a maintainer script with dpkg's arguments; returns the stubs' calls, one "command args" a line. */
  run(script: string, args: string[], opts?: { systemd?: boolean; helpers?: boolean }): Promise<string[]>;
  /** Runs a maintainer script with the machine's own deb-systemd-helper on the package installed under dpkgRoot. */
  runReal(script: string, args: string[]): Promise<void>;
  dpkgRoot: string;
}

async function sandbox(t: { after(fn: () => Promise<void>): void }): Promise<Sandbox> {
  const root = await builtCopy(t);
  const deb = await buildDeb(root, await tempDir(t, 'deb'));
  const dir = await tempDir(t, 'maint');
  const control = path.join(dir, 'DEBIAN');
  await execa('dpkg-deb', ['-e', deb, control]);
  const stubs = path.join(dir, 'stubs');
  await fs.mkdir(stubs);
  const log = path.join(dir, 'calls');
  for (const name of ['systemctl', 'deb-systemd-invoke', 'deb-systemd-helper']) {
    await fs.writeFile(path.join(stubs, name), `#!/bin/sh\necho "${name} $*" >> ${log}\n`, { mode: 0o755 });
  }
  const runDir = path.join(dir, 'run-systemd-system');
  const empty = path.join(dir, 'empty');
  await fs.mkdir(empty);
  const dpkgRoot = path.join(dir, 'root');
  await execa('dpkg-deb', ['-x', deb, dpkgRoot]);
  const scriptFor = async (script: string) => {
    const text = await fs.readFile(path.join(control, script), 'utf8').catch(() => assert.fail(`the package has no ${script}`));
    await fs.writeFile(path.join(dir, script), text.replaceAll('/run/systemd/system', runDir), { mode: 0o755 });
    return path.join(dir, script);
  };
  return {
    dpkgRoot,
    async runReal(script, args) {
      await fs.rm(runDir, { recursive: true, force: true });
      const env = { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', DPKG_ROOT: dpkgRoot, DPKG_MAINTSCRIPT_PACKAGE: 'snapferry' };
      const r = await execa('/bin/sh', [await scriptFor(script), ...args], { reject: false, env, extendEnv: false });
      assert.equal(r.exitCode, 0, `${script} ${args.join(' ')}: ${r.stderr}`);
    },
    async run(script, args, { systemd = true, helpers = true } = {}) {
      const file = await scriptFor(script);
      await fs.rm(runDir, { recursive: true, force: true });
      if (systemd) await fs.mkdir(runDir);
      await fs.rm(log, { force: true });
      const r = await execa('/bin/sh', [file, ...args], {
        reject: false,
        env: { PATH: helpers ? stubs : empty, DPKG_MAINTSCRIPT_PACKAGE: 'snapferry' },
        extendEnv: false,
      });
      assert.equal(r.exitCode, 0, `${script} ${args.join(' ')}: ${r.stderr}`);
      return (await fs.readFile(log, 'utf8').catch(() => '')).split('\n').filter(Boolean);
    },
  };
}

const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});
let built: Promise<Sandbox> | undefined;
/** The package is built once for the file. */
function once(): Promise<Sandbox> {
  built ??= sandbox({ after: (fn) => void cleanups.push(fn) });
  return built;
}

test('dpkg -r stops the units before their files go and removes their enabled links; -P cleans their state', async () => {
  const box = await once();
  assert.deepEqual(await box.run('prerm', ['remove']), [`deb-systemd-invoke stop ${STOP_ORDER}`]);
  assert.deepEqual(await box.run('postrm', ['remove']), [`deb-systemd-helper disable ${LINKED}`, 'systemctl --system daemon-reload']);
  assert.deepEqual(await box.run('postrm', ['purge']), [`deb-systemd-helper purge ${LINKED}`]);

  // An upgrade stops nothing before the files change: postinst restarts what ran once the new ones are in place.
  assert.deepEqual(await box.run('prerm', ['upgrade', '0.2.0']), []);
  assert.deepEqual(await box.run('postrm', ['upgrade', '0.2.0']), []);
  assert.deepEqual(await box.run('postinst', ['configure', '0.0.9']), [
    `deb-systemd-helper update-state ${LINKED}`,
    'systemctl --system daemon-reload',
    `deb-systemd-invoke try-restart ${STOP_ORDER}`,
  ]);
  // A first install starts nothing: the units need a config, and are enabled by hand.
  assert.deepEqual(await box.run('postinst', ['configure', '']), [`deb-systemd-helper update-state ${LINKED}`, 'systemctl --system daemon-reload']);
  assert.deepEqual(await box.run('postinst', ['configure']), [`deb-systemd-helper update-state ${LINKED}`, 'systemctl --system daemon-reload']);

  // Without a running systemd (a container, a chroot) nothing talks to it; the state is still kept.
  assert.deepEqual(await box.run('prerm', ['remove'], { systemd: false }), []);
  assert.deepEqual(await box.run('postinst', ['configure', '0.0.9'], { systemd: false }), [`deb-systemd-helper update-state ${LINKED}`]);
  assert.deepEqual(await box.run('postrm', ['remove'], { systemd: false }), [`deb-systemd-helper disable ${LINKED}`]);
  // Nor does a machine without the helpers (init-system-helpers) fail the scripts.
  for (const [script, args] of [['prerm', ['remove']], ['postrm', ['remove']], ['postrm', ['purge']], ['postinst', ['configure', '0.0.9']]] as const) {
    assert.deepEqual(await box.run(script, [...args], { helpers: false }), []);
  }
});

test('with the machine\'s deb-systemd-helper: the link of a `systemctl enable` is gone after dpkg -r, its state after -P', async (t) => {
  const probe = await execa('deb-systemd-helper', ['--help'], { reject: false });
  if (probe.exitCode === null || (probe as { code?: string }).code === 'ENOENT') return t.skip('init-system-helpers is not installed');
  const box = await once();
  await box.runReal('postinst', ['configure', '']);
  // What `systemctl enable snapferry-server snapferry-client.timer` makes.
  const links = [
    ['multi-user.target.wants', 'snapferry-server.service'],
    ['timers.target.wants', 'snapferry-client.timer'],
  ].map(([wants, unit]) => [path.join(box.dpkgRoot, 'etc/systemd/system', wants!, unit!), `/usr/lib/systemd/system/${unit}`] as const);
  for (const [link, target] of links) {
    await fs.mkdir(path.dirname(link), { recursive: true });
    await fs.symlink(target, link);
  }
  // dpkg removes the package's files between prerm and postrm.
  await fs.rm(path.join(box.dpkgRoot, 'usr/lib/systemd/system'), { recursive: true });
  await box.runReal('postrm', ['remove']);
  for (const [link] of links) await assert.rejects(fs.lstat(link), { code: 'ENOENT' }, `${link} is left behind`);
  await box.runReal('postrm', ['purge']);
  await assert.rejects(fs.readdir(path.join(box.dpkgRoot, 'var/lib/systemd/deb-systemd-helper-enabled')), { code: 'ENOENT' });
});
