/**
 * A server that dies says why in its log (server/crash-log.ts): the bench's slow link lost its server twice with no
 * line to tell why. Real `snapferry serve` processes on a real btrfs root; a preloaded fixture plants the fault in
 * the running server on SIGUSR2, once it is listening.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { createSmallBtrfs, rootOnly } from '../fixtures/btrfs.ts';
import { ChildProcesses, freePort, type ServeProcess } from './processes.ts';

const FAULT = pathToFileURL(path.resolve(import.meta.dirname, '../fixtures/fault-on-signal.mjs')).href;

interface LogLine {
  level: number;
  msg: string;
  err?: { message: string; stack: string };
  code?: number;
}

/** The server's JSON log lines (stderr also carries the "serving" line, which is not JSON). */
function logLines(stderr: string): LogLine[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine);
}

async function serveWithFault(t: TestContext, fault: string): Promise<ServeProcess> {
  const children = new ChildProcesses(t);
  const fs = await createSmallBtrfs(t);
  return children.serve({
    root: path.join(fs.mountPoint, 'root'),
    port: await freePort(),
    env: { NODE_OPTIONS: `--import=${FAULT}`, SNAPFERRY_TEST_FAULT: fault },
  });
}

for (const [fault, said] of [
  ['exception', 'uncaught exception: the server stops'],
  ['rejection', 'unhandled promise rejection: the server stops'],
] as const) {
  test(`an ${said.split(':')[0]} is logged as fatal, with its error, and the server exits 1`, rootOnly, async (t) => {
    const server = await serveWithFault(t, fault);
    process.kill(server.pid, 'SIGUSR2');
    const exit = await server.exited;
    assert.deepEqual(exit, { code: 1, signal: null }, server.stderr);
    const fatal = logLines(server.stderr).filter((l) => l.level === 60);
    assert.equal(fatal.length, 1, server.stderr);
    assert.equal(fatal[0]!.msg, said);
    assert.match(fatal[0]!.err?.message ?? '', /a fault the test planted/);
    assert.match(fatal[0]!.err?.stack ?? '', /fault-on-signal\.mjs/, 'the stack says where it came from');
  });
}

test('an exit nobody asked for is logged with its code', rootOnly, async (t) => {
  const server = await serveWithFault(t, 'exit');
  process.kill(server.pid, 'SIGUSR2');
  assert.deepEqual(await server.exited, { code: 3, signal: null }, server.stderr);
  const errors = logLines(server.stderr).filter((l) => l.level === 50);
  assert.deepEqual(errors.map((l) => [l.msg, l.code]), [['the server process exits (code 3) without having been asked to', 3]], server.stderr);
});

test('a stop asked for with SIGTERM is logged as a stop, not as a death', rootOnly, async (t) => {
  const server = await serveWithFault(t, 'none');
  process.kill(server.pid, 'SIGTERM');
  assert.deepEqual(await server.exited, { code: 0, signal: null }, server.stderr);
  const lines = logLines(server.stderr);
  assert.deepEqual(lines.filter((l) => l.level >= 50), [], server.stderr);
  assert.ok(lines.some((l) => l.msg === 'stopped'), server.stderr);
});
