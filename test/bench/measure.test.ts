// The bench's instruments, checked against real processes: bash's `times`, /proc accounting, the RSS probe, the
// cleanup stack. A bench whose instruments read zero (or someone else's process) would print a confident table.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { Cleanup } from './cleanup.ts';
import { childrenOf, childrenReaped, parseTimes, probeEnv, processCpuSeconds, readProbe, timedShell } from './measure.ts';

test('timedShell counts the CPU of the pipeline it ran, and fails with its stderr', async () => {
  const run = await timedShell('head -c 200000000 /dev/zero | sha256sum | cut -c1-8', []);
  assert.equal(run.stdout, (await execa('bash', ['-c', 'head -c 200000000 /dev/zero | sha256sum | cut -c1-8'])).stdout);
  assert.ok(run.cpuSeconds > 0.05, `sha256 of 200 MB took ${run.cpuSeconds} s of CPU`);
  assert.ok(run.cpuSeconds <= run.seconds * os.availableParallelism() + 0.05, 'no more CPU than the machine had');
  const args = await timedShell('printf %s "$1"', ['a "b" $c']);
  assert.equal(args.stdout, 'a "b" $c', 'arguments reach the script unchanged');
  await assert.rejects(timedShell('false | cat', []), /failed \(1\)/, 'pipefail: a failing first command fails the run');
  await assert.rejects(timedShell('echo oops >&2; exit 3', []), /oops/);
});

test('parseTimes reads the children line of bash times', () => {
  assert.equal(parseTimes('0m0.001s 0m0.002s\n1m2.500s 0m3.250s\n'), 65.75);
  assert.throws(() => parseTimes('garbage'), /cannot read bash times/);
});

test('processCpuSeconds counts a child once it is reaped; childrenReaped waits for that', async () => {
  const sleeper = execa('sleep', ['30']);
  assert.equal(await childrenReaped(process.pid, /^sleep$/, 200), false, 'a live child of that name: not reaped');
  sleeper.kill();
  await sleeper.catch(() => undefined);
  const before = await processCpuSeconds(process.pid);
  const child = execa('bash', ['-c', 'head -c 300000000 /dev/zero | sha256sum > /dev/null']);
  assert.ok((await childrenOf(process.pid)).includes(child.pid!), 'the child is listed while it runs');
  await child;
  assert.equal(await childrenReaped(process.pid, /^bash$/, 5000), true);
  const spent = (await processCpuSeconds(process.pid)) - before;
  assert.ok(spent > 0.1, `the reaped child's sha256 counted: ${spent} s`);
});

test('probe.mjs writes peak RSS and CPU of a node process on exit', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-bench-probe-test-'));
  try {
    const file = path.join(dir, 'probe.json');
    const script = 'const b = Buffer.alloc(200e6, 1); let x = 0; for (let i = 0; i < b.length; i += 4096) x += b[i]; console.log(x > 0)';
    await execa('node', ['-e', script], { env: probeEnv(file) });
    const probe = await readProbe(file);
    assert.ok(probe.maxRssBytes > 200e6, `peak RSS ${probe.maxRssBytes} covers the 200 MB buffer`);
    assert.ok(probe.maxRssBytes < 400e6, `peak RSS ${probe.maxRssBytes} is in bytes, not KiB`);
    assert.ok(probe.cpuSeconds > 0);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('Cleanup runs every step once, newest first, past a step that fails', async () => {
  const cleanup = new Cleanup();
  const ran: string[] = [];
  cleanup.after(() => void ran.push('first'));
  cleanup.after(() => {
    ran.push('fails');
    throw new Error('expected in this test');
  });
  cleanup.after(async () => {
    await new Promise((r) => setTimeout(r, 10));
    ran.push('last');
  });
  const write = process.stderr.write;
  process.stderr.write = () => true;
  try {
    await Promise.all([cleanup.run(), cleanup.run()]);
  } finally {
    process.stderr.write = write;
  }
  assert.deepEqual(ran, ['last', 'fails', 'first']);
});
