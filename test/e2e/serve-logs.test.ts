// What `snapferry serve` logs, as it runs: text for a person at a terminal, JSON lines otherwise, and a line at info
// for each cut and each resume of an upload.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execa } from 'execa';
import { rootOnly } from '../fixtures/btrfs.ts';
import { ServerApi } from '../../client/http/api.ts';
import { EXIT } from '../../client/exit-codes.ts';
import { prettyLine } from '../../server/log-pretty.ts';
import { SNAPFERRY_BIN, ChildProcesses, freePort } from './processes.ts';
import { createPair, until } from './harness.ts';

interface LogLine {
  level: number;
  msg: string;
  transfer?: string;
}

const logLines = (stderr: string): LogLine[] => stderr.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as LogLine);

test('a log line for people: time, level by name, message, fields, the stack indented below', () => {
  const line = JSON.stringify({ level: 40, time: Date.UTC(2026, 11, 5, 1, 2, 3), service: 'snapferry-server', transfer: 'ab12', volume: 'my home', msg: 'upload cut', err: { message: 'boom', stack: 'Error: boom\n    at x' } });
  assert.equal(prettyLine(line, false), '01:02:03 WARN  upload cut  transfer=ab12  volume="my home"\n    Error: boom\n        at x\n');
  assert.ok(prettyLine(line, true).includes('\x1b[33mWARN \x1b[0m'));
  assert.equal(prettyLine('not json', false), 'not json');
});

test('serve on a terminal logs text, not JSON lines', rootOnly, async (t) => {
  const pair = await createPair(t, { fillMB: 1 });
  const port = await freePort();
  // script(1) gives the server a terminal, as a person starting it by hand has; it ends after a few seconds.
  const command = `timeout -s TERM 4 node ${SNAPFERRY_BIN} serve --root ${pair.root} --listen 127.0.0.1:${port} --no-auth`;
  const r = await execa('script', ['-qec', command, '/dev/null'], { reject: false, env: { NO_COLOR: '1' }, timeout: 60_000 });
  assert.match(r.stdout, /^\d\d:\d\d:\d\d INFO {2}listening {2}url=http:\/\/127\.0\.0\.1:\d+/m, r.stdout);
  assert.match(r.stdout, /INFO {2}stopped {2}why=SIGTERM/);
  assert.doesNotMatch(r.stdout, /\{"level"/);
});

test('serve logs each cut and each resume of an upload at info', rootOnly, async (t) => {
  const children = new ChildProcesses(t);
  const pair = await createPair(t, { fillMB: 6 });
  const s1 = await pair.snapshot('s1');
  const server = await children.serve({ root: pair.root, port: await freePort() });
  const args = ['push', '--server', server.url, '--volume', 'home', '--compress', 'none', '--limit-rate', '1M', '--chunk-size', '256K', s1];
  const first = children.run(args);
  const api = new ServerApi({ server: server.url });
  const uploading = await until('frames arrive', async () => (await api.transfers()).transfers.find((x) => x.state === 'uploading' && x.framesVerified > 1));
  await first.kill9();
  await until('the server saw the cut', () => logLines(server.stderr).find((l) => l.msg.startsWith('upload cut')));
  const second = await execa('node', [SNAPFERRY_BIN, ...args], { reject: false, timeout: 120_000 });
  assert.equal(second.exitCode, EXIT.ok, second.stderr);
  const lines = logLines(server.stderr);
  const cut = lines.filter((l) => l.msg.startsWith('upload cut'));
  const resumed = lines.filter((l) => l.msg === 'upload resumed');
  assert.equal(cut.length, 1, server.stderr);
  assert.equal(resumed.length, 1, server.stderr);
  for (const l of [...cut, ...resumed]) {
    assert.equal(l.level, 30);
    assert.equal(l.transfer, uploading.id);
  }
});
