/**
 * What the code-variant A/B harnesses (serve-cpu-ab.ts, restore-cpu-ab.ts) share: a log line with the seconds since
 * the start, the bench's world at the bench's own scale (SNAPFERRY_BENCH_QUICK=1 for a small one), the stream named
 * on the command line, and the rounds: each variant in turn with SNAPFERRY_AB_VARIANT set to it, the order reversed
 * every other round, so that every variant sees the same minutes of a busy machine; each variant's figures and mean
 * at the end.
 */
import { Cleanup } from './cleanup.ts';
import { parseBenchArgs } from './options.ts';
import { probeDir, type Probes } from './snapferry.ts';
import { buildWorld, type Stream, type World } from './world.ts';

export interface AbBench {
  cleanup: Cleanup;
  world: World;
  probes: Probes;
  /** The full stream, or the quarter one when the command line said `quarter`. */
  stream: Stream;
  say: (line: string) => void;
}

/** Builds the world, runs `body` on it, and takes it all down again whether `body` ends, throws or is interrupted. */
export async function withAbBench(streamArg: string | undefined, body: (bench: AbBench) => Promise<void>): Promise<void> {
  const started = performance.now();
  const say = (line: string): void => void process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  try {
    const options = parseBenchArgs([]);
    if (options === 'help') throw new Error('unreachable');
    const world = await buildWorld(cleanup, options.scale, say);
    const probes = await probeDir(cleanup);
    await body({ cleanup, world, probes, stream: streamArg === 'quarter' ? world.quarter : world.full, say });
  } finally {
    await cleanup.run();
  }
}

/**
 * `measure` for every variant (none given: the code as it is, variant '') in each of `rounds` rounds; it returns a
 * figure in s/GB, and the means are said at the end.
 */
export async function alternateVariants(
  bench: Pick<AbBench, 'say'>,
  rounds: number,
  variants: readonly string[],
  measure: (variant: string, round: number) => Promise<number>,
): Promise<void> {
  const order = variants.length > 0 ? variants : [''];
  const figures = new Map<string, number[]>(order.map((v) => [v, []]));
  for (let r = 0; r < rounds; r++) {
    for (const variant of r % 2 === 0 ? order : [...order].reverse()) {
      process.env.SNAPFERRY_AB_VARIANT = variant;
      figures.get(variant)!.push(await measure(variant, r));
    }
  }
  for (const [v, xs] of figures) bench.say(`variant '${v}': ${xs.map((x) => x.toFixed(2)).join(', ')}; mean ${(xs.reduce((a, b) => a + b, 0) / xs.length).toFixed(2)} s/GB`);
}
