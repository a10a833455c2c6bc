/**
 * A child process for chaos-proxy.test.ts: puts the proxy to work (a throttled upload waiting on the rate limiter,
 * an idle connection, a cut schedule), closes it and the target, prints "closed" and the handles still open, and
 * then has to exit on its own: any socket or timer the proxy left behind would keep it alive.
 */
import { startChaosProxyCore as startChaosProxy } from './proxy-core.ts';
import { send, startSink, until } from './peers.ts';

const sink = await startSink({ after: () => undefined });
const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: sink.port } });
proxy.setRate({ upstream: 20_000, downstream: 20_000 });
proxy.cutEvery(1 << 20);
const busy = send(proxy.port, Buffer.alloc(1 << 20));
const idle = send(proxy.port, Buffer.alloc(0));
await sink.accepted(2);
await until('some bytes to cross', () => proxy.stats().upstreamBytes > 0);
await proxy.close();
await Promise.all([busy.done, idle.done]);
await sink.close();
process.stdout.write(`closed ${JSON.stringify(process.getActiveResourcesInfo())}\n`);
