// `systemctl stop` (SIGTERM) on a server with an upload in flight, through `snapferry serve` as it runs: it stops
// cleanly (exit 0, a `stopped` line, nothing fatal), keeps the upload's verified frames, and starts again without
// any warning of a crash; the push rides it out and finishes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { ChildProcesses, freePort } from './processes.ts';
import { assertReceived, createPair, until } from './harness.ts';

interface LogLine {
  level: number;
  msg: string;
}

const logLines = (stderr: string): LogLine[] => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

test('SIGTERM with an upload in flight: serve logs `stopped`, exits 0, keeps the frames, and the next start warns of nothing', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 8 });
  const s1 = await pair.snapshot('s1');
  const port = await freePort();
  const first = await children.serve({ root: pair.root, port });
  const push = children.run(['push', '--server', first.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', '--chunk-size', '256K', s1]);
  const api = new ServerApi({ server: first.url });
  const before = await until('frames arrive', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.framesVerified > 1));

  process.kill(first.pid, 'SIGTERM');
  const ended = await first.exited;
  assert.deepEqual(ended, { code: 0, signal: null }, `${JSON.stringify(ended)}\n${first.stderr}`);
  const lines = logLines(first.stderr);
  assert.ok(lines.some((l) => l.msg === 'stopped'), first.stderr);
  assert.deepEqual(lines.filter((l) => l.level >= 50), [], 'nothing fatal or error on the way out');

  const second = await children.serve({ root: pair.root, port });
  const again = new ServerApi({ server: second.url });
  const kept = (await again.transfers()).transfers.find((x) => x.id === before.id);
  assert.ok(kept !== undefined && kept.framesVerified >= before.framesVerified, `frames kept: ${JSON.stringify(kept)}`);
  const pushed = await push.exited;
  assert.equal(pushed.code, EXIT.ok, push.stderr);
  await assertReceived(s1, pair.receivedPath('home', 's1'));
  // The test filesystem is mounted without nosuid,nodev, which the server rightly warns of at every start.
  const warnings = logLines(second.stderr).filter((l) => l.level >= 40 && !/nosuid,nodev/.test(l.msg));
  assert.deepEqual(warnings, [], second.stderr);
});
