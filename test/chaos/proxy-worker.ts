/**
 * The chaos proxy's worker thread (started by chaos-proxy.ts): runs the engine, mirrors its counts into the shared
 * memory the test thread reads, and carries out the commands it is sent.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { startChaosProxyCore } from './proxy-core.ts';
import { STAT_FIELDS, type ProxyCommand, type ProxyEvent, type WorkerSetup } from './proxy-messages.ts';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const shared = new Float64Array(setup.stats);
const post = (event: ProxyEvent) => port.postMessage(event);

try {
  const proxy = await startChaosProxyCore(setup.options);
  const publish = () => {
    const stats = proxy.stats();
    STAT_FIELDS.forEach((field, i) => {
      shared[i] = stats[field];
    });
  };
  proxy.onChange(publish);
  proxy.onCut((event) => post({ type: 'cut', event }));
  port.on('message', (command: ProxyCommand) => {
    switch (command.type) {
      case 'setRate': return proxy.setRate(command.rate);
      case 'cutAfter': return proxy.cutAfter(command.bytes);
      case 'cutEvery': return proxy.cutEvery(command.bytes);
      case 'dribble': return proxy.dribble(command.bytes);
      case 'cutRandomly': return proxy.cutRandomly(command.options);
      case 'refuse': return proxy.refuse(command.on);
      case 'cutNow': return post({ type: 'reply', id: command.id, value: proxy.cutNow() });
      case 'sync': return post({ type: 'reply', id: command.id, value: 0 });
      case 'close':
        return void proxy.close().then(() => {
          publish();
          post({ type: 'reply', id: command.id, value: 0 });
        });
    }
  });
  publish();
  post({ type: 'listening', host: proxy.host, port: proxy.port });
} catch (err) {
  post({ type: 'failed', message: (err as Error).message });
}
