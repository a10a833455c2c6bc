/**
 * The chaos proxy as a program, for the demo and for trying faults by hand:
 *
 *   node --import tsx test/chaos/run-proxy.ts --target 127.0.0.1:8080 --rate 2M --cut-every 8M --cuts 2
 *
 * prints `chaos proxy on http://127.0.0.1:PORT` and a line per cut, and runs until killed.
 */
import { parseArgs } from 'node:util';
import { startChaosProxyCore } from './proxy-core.ts';

function bytes(value: string | undefined, name: string): number | null {
  if (value === undefined) return null;
  const m = /^(\d+)([kmg]?)$/i.exec(value);
  if (!m) throw new Error(`--${name} wants a size like 2M, not ${value}`);
  return Number(m[1]) * ({ '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3 } as Record<string, number>)[m[2]!.toLowerCase()]!;
}

const { values } = parseArgs({
  options: {
    target: { type: 'string' },
    port: { type: 'string', default: '0' },
    rate: { type: 'string' },
    'cut-every': { type: 'string' },
    cuts: { type: 'string' },
  },
});
const target = /^(.+):(\d+)$/.exec(values.target ?? '');
if (!target) throw new Error('--target HOST:PORT is required');
const proxy = await startChaosProxyCore({ target: { host: target[1]!, port: Number(target[2]) }, listenPort: Number(values.port) });
const rate = bytes(values.rate, 'rate');
if (rate !== null) proxy.setRate(rate);
const every = bytes(values['cut-every'], 'cut-every');
const maxCuts = values.cuts === undefined ? Infinity : Number(values.cuts);
if (every !== null) proxy.cutEvery(every);
proxy.onCut((cut) => {
  const n = proxy.stats().cuts;
  process.stderr.write(`chaos proxy: cut #${n} after ${(cut.position / 1024 / 1024).toFixed(1)} MiB (${cut.connections} connection(s) reset)\n`);
  if (n >= maxCuts) proxy.cutEvery(null);
});
process.stdout.write(`chaos proxy on ${proxy.url}\n`);
const stop = () => void proxy.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
