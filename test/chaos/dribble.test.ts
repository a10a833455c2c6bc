/**
 * ChaosProxy.dribble: upstream bytes reach the far end in slivers of at most the given size, evenly spaced at the
 * link's rate, so that the receiver reads them a few bytes at a time (test/e2e/slow-link-slivers.test.ts).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { randomBytes } from 'node:crypto';
import { startChaosProxyCore } from './proxy-core.ts';

const SLIVER = 16;

test('dribble(16) delivers every byte, read a sliver or two at a time', { timeout: 20_000 }, async (t) => {
  const reads: number[] = [];
  const got: Buffer[] = [];
  let onEnd!: () => void;
  const ended = new Promise<void>((resolve) => (onEnd = resolve));
  const sink = net.createServer((socket) => {
    socket.on('data', (chunk: Buffer) => {
      reads.push(chunk.length);
      got.push(chunk);
    });
    socket.on('end', () => {
      socket.end();
      onEnd();
    });
  });
  await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => sink.close(() => resolve())));
  const proxy = await startChaosProxyCore({ target: { host: '127.0.0.1', port: (sink.address() as net.AddressInfo).port } });
  t.after(() => proxy.close());
  proxy.setRate(64 * 1024);
  proxy.dribble(SLIVER);

  const data = randomBytes(32 * 1024);
  const client = net.connect(proxy.port, '127.0.0.1', () => client.end(data));
  client.resume();
  await ended;
  assert.ok(Buffer.concat(got).equals(data), 'the bytes arrived whole and in order');
  assert.ok(Math.max(...reads) <= 4 * SLIVER, `the largest read was ${Math.max(...reads)} bytes`);
  // A busy machine may let two or three slivers meet in the receive queue now and then, not as a rule.
  assert.ok(reads.length >= data.length / (2 * SLIVER), `${reads.length} reads for ${data.length} bytes`);
  assert.throws(() => proxy.dribble(0), /dribble takes a whole number of bytes/);
});
