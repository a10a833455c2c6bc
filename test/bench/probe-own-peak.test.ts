// The RSS probe reports the process's own peak, not its parent's. Linux counts in a child's ru_maxrss (what
// process.resourceUsage().maxRSS reads) the RSS of the parent it was forked from, up to the exec: a small process
// started by a large bench read as large as the bench (`push --help` read 82-138 MB where it peaks near 53 MB,
// docs/performance.md).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { probeEnv, readProbe } from './measure.ts';

test('a small process started by a large one: the probe reads the small one', async () => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'snapferry-bench-probe-own-'));
  // 300 MB of this process's memory, touched, while it starts the child.
  const ballast = Buffer.alloc(300e6, 1);
  try {
    const file = path.join(dir, 'probe.json');
    await execa('node', ['-e', '0'], { env: probeEnv(file) });
    const probe = await readProbe(file);
    assert.ok(probe.maxRssBytes > 10e6, `peak RSS ${probe.maxRssBytes}: a node process`);
    assert.ok(probe.maxRssBytes < 200e6, `peak RSS ${probe.maxRssBytes} is the parent's 300 MB, not node -e 0's own`);
  } finally {
    assert.equal(ballast[299e6], 1);
    await rm(dir, { recursive: true, force: true });
  }
});
