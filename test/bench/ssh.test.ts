// The ssh baseline's private sshd: a real OpenSSH server on loopback, its command words reaching the remote side
// unchanged, its sessions' CPU counted on the listener, and nothing left running afterwards.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { isRoot, NOT_ROOT_MESSAGE } from '../fixtures/btrfs.ts';
import { canConnect } from '../fixtures/local-port.ts';
import { Cleanup } from './cleanup.ts';
import { timedShell } from './measure.ts';
import { shellQuote, sshdAvailable, SSHD_MISSING, startSshd } from './ssh.ts';

const skip = !isRoot ? NOT_ROOT_MESSAGE : !sshdAvailable() ? SSHD_MISSING : false;

test('a private sshd runs commands with awkward words intact, counts their CPU, and is gone after cleanup', { skip, timeout: 60_000 }, async () => {
  const cleanup = new Cleanup();
  try {
    const sshd = await startSshd(cleanup);
    const words = ['printf', '%s|', 'two words', "it's", '$HOME', '*', '-n', 'a"b'];
    const { stdout } = await execa('ssh', sshd.sshArgs(words));
    assert.equal(stdout, "two words|it's|$HOME|*|-n|a\"b|");

    const before = await sshd.serverCpuSeconds();
    const run = await timedShell('head -c 100000000 /dev/zero | ssh "$@"', sshd.sshArgs(['sha256sum']));
    assert.match(run.stdout, /^[0-9a-f]{64}/);
    const spent = (await sshd.serverCpuSeconds()) - before;
    assert.ok(spent > 0.1, `the session's sha256 of 100 MB counted on the listener: ${spent} s`);
    assert.ok(run.cpuSeconds > 0, 'and the client side (head + ssh) on bash');

    await cleanup.run();
    assert.equal(await canConnect(sshd.port), false, 'sshd stopped');
  } finally {
    await cleanup.run();
  }
});

test('shellQuote leaves plain words alone and quotes the rest for sh', async () => {
  assert.equal(shellQuote('/mnt/a-b_c.d'), '/mnt/a-b_c.d');
  const words = ['', 'a b', "'", "a'b'", '\\', '$(x)', '`x`', 'ü'];
  const { stdout } = await execa('sh', ['-c', `printf '%s\\n' ${words.map(shellQuote).join(' ')}`]);
  assert.deepEqual(stdout.split('\n'), words);
});
