// process_cpu_seconds_total on the first scrape of a `snapferry serve` process: the CPU the process has used since
// it started (as /proc says), not since the scrape.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ChildProcesses, freePort } from './processes.ts';
import { createPair } from './harness.ts';

/** utime + stime of a process from /proc, in seconds (clock ticks of 1/100 s on Linux). */
async function procCpuSeconds(pid: number): Promise<number> {
  const stat = await fs.readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

test('the first scrape counts process CPU from the process start', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 1 });
  const server = await children.serve({ root: pair.root, port: await freePort() });
  const used = await procCpuSeconds(server.pid);
  assert.ok(used >= 0.1, `start-up used ${used} s of CPU, enough to tell`);
  const text = await (await fetch(`${server.url}/metrics`)).text();
  const counted = Number(/^process_cpu_seconds_total (\S+)$/m.exec(text)?.[1]);
  // /proc rounds down to 10 ms; the scrape itself adds a little.
  assert.ok(counted >= used - 0.02, `process_cpu_seconds_total ${counted} < ${used} s used since the start`);
});
