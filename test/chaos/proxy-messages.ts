/** What the test thread and the chaos proxy's worker say to each other (chaos-proxy.ts, proxy-worker.ts). */
import type { ChaosProxyOptions, ChaosStats, CutEvent, RandomCuts, RateSetting } from './proxy-core.ts';

/** The counters, in this order, as float64s in the shared buffer. */
export const STAT_FIELDS = ['upstreamBytes', 'downstreamBytes', 'connections', 'refused', 'cuts', 'clientResets', 'live', 'queuedBytes'] as const satisfies readonly (keyof ChaosStats)[];

export interface WorkerSetup {
  options: ChaosProxyOptions;
  stats: SharedArrayBuffer;
}

export type ProxyCommand =
  | { type: 'setRate'; rate: RateSetting }
  | { type: 'cutAfter' | 'cutEvery' | 'dribble'; bytes: number | null }
  | { type: 'cutRandomly'; options: RandomCuts | null }
  | { type: 'refuse'; on: boolean }
  | { type: 'cutNow' | 'sync' | 'close'; id: number };

export type ProxyEvent =
  | { type: 'listening'; host: string; port: number }
  | { type: 'failed'; message: string }
  | { type: 'cut'; event: CutEvent }
  | { type: 'reply'; id: number; value: number };
