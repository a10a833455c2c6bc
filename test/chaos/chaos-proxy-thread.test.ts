/**
 * The chaos proxy as tests use it: in a worker thread, driven by messages, counted in shared memory.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { startChaosProxy } from './chaos-proxy.ts';
import type { CutEvent } from './proxy-core.ts';
import { send, startSink, until } from './peers.ts';

const RESET = ['ECONNRESET', 'EPIPE'];

test('the threaded proxy carries bytes, counts them in shared memory, and resets its counts', { timeout: 20_000 }, async (t) => {
  const sink = await startSink(t, { echo: true });
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: sink.port } });
  t.after(() => proxy.close());
  const data = randomBytes(1 << 20);
  const { outcome, received } = await send(proxy.port, data, { end: true }).done;
  assert.equal(outcome, 'end');
  assert.ok(received.equals(data));
  // The proxy counts a connection as gone once both of its sockets closed, a moment after the client saw the end.
  await until('the counts', () => proxy.stats().downstreamBytes === data.length && proxy.stats().live === 0);
  assert.deepEqual(proxy.stats(), {
    upstreamBytes: data.length, downstreamBytes: data.length, connections: 1, refused: 0, cuts: 0, clientResets: 0, live: 0,
    queuedBytes: 0,
  });
  proxy.resetStats();
  assert.equal(proxy.stats().upstreamBytes, 0);
  assert.equal(proxy.stats().connections, 0);
  await send(proxy.port, Buffer.from('abc'), { end: true }).done;
  await until('three more bytes', () => proxy.stats().upstreamBytes === 3);
});

test('the threaded proxy applies settings in order and reports cuts', { timeout: 20_000 }, async (t) => {
  const sink = await startSink(t);
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: sink.port } });
  t.after(() => proxy.close());
  const cuts: CutEvent[] = [];
  proxy.onCut((cut) => cuts.push(cut));
  proxy.cutAfter(1000);
  await proxy.settled();
  const cutOne = await send(proxy.port, randomBytes(5000)).done;
  assert.ok(RESET.includes(cutOne.outcome), `the client saw ${cutOne.outcome}`);
  await until('the cut event', () => cuts.length === 1);
  assert.equal(cuts[0]!.position, 1000);
  assert.equal(proxy.stats().upstreamBytes, 1000);

  const live = [send(proxy.port, Buffer.from('a')), send(proxy.port, Buffer.from('b'))];
  await until('both connections to carry a byte', () => proxy.stats().upstreamBytes === 1002);
  assert.equal(await proxy.cutNow(), 2);
  for (const s of live) assert.ok(RESET.includes((await s.done).outcome));
  assert.equal(await proxy.cutNow(), 0);
  assert.equal(proxy.stats().cuts, 2);
});
