/**
 * The slow link: `snapferry push` through the chaos proxy at 2 Mbit/s upstream, the link cut every 30 s of link time,
 * once with `--compress 3` and once with `--compress auto`. Against the raw stream and `zstd -3` of the whole stream
 * (what `btrfs send | zstd -3 | ssh` would put on the wire), it reports the wire bytes (the final upload length), and
 * the bytes sent again after cuts: everything that crossed the proxy upstream minus the final upload length, as
 * test/e2e/resume-cuts.test.ts counts them (HTTP requests included). And the line's timeline as the proxy saw it
 * (its upstream count sampled, and when each cut fell), from which the report takes the time on the line with the
 * cuts set aside (report.ts, lineCutsAside).
 */
import path from 'node:path';
import { FRAME_HEADER_SIZE } from '../../core/wire/index.ts';
import { startChaosProxy } from '../chaos/chaos-proxy.ts';
import type { LanContext } from './lan.ts';
import { timedShell } from './measure.ts';
import type { Scale } from './options.ts';
import { BenchServer, removeServerRoot, runPush } from './snapferry.ts';
import { SEND_SCRIPT, sendArgs, settle } from './world.ts';

export interface SlowVariant {
  setting: string;
  seconds: number;
  wireBytes: number;
  /** Every byte that crossed the proxy towards the server. */
  upstreamBytes: number;
  cuts: number;
  resentBytes: number;
  /** Frames of this transfer: raw chunk size plus the frame header. */
  frameBytes: number;
  /** The push's notes on its compression level, in order. */
  levelNotes: string[];
  /** The line during the push; absent in results written before it was recorded. */
  line?: LineTimeline;
}

/** What crossed the proxy upstream during a push, seconds counted from the push's start. */
export interface LineTimeline {
  /** [seconds, upstream bytes so far], every LINE_SAMPLE_MS, from the push's start to its end. */
  samples: Array<[number, number]>;
  /** When each cut fell. */
  cuts: number[];
}

/** Often enough that a cut's gap (the push reconnects, hashes the stream again to the offset) is seen to a tenth of a second. */
const LINE_SAMPLE_MS = 100;

export interface SlowResult {
  rawBytes: number;
  zstd3Bytes: number;
  /**
   * `zstd -19 --long=27` of the whole stream: about what the best whole-stream compressor makes of it (xz -9e is
   * within 0.5%), so the table shows how far below it a byte target lies. Absent in results written before it.
   */
  zstdBestBytes?: number;
  linkBytesPerSecond: number;
  cutEveryBytes: number;
  variants: Array<SlowVariant | SlowFailure>;
}

/** A variant that did not finish: the other one still counts. */
export interface SlowFailure {
  setting: string;
  failed: string;
}

export async function runSlowLink(ctx: LanContext, scale: Scale): Promise<SlowResult> {
  const stream = ctx.world.slow;
  ctx.say('slow link: zstd -3 of the whole stream');
  const zstd = await timedShell(`${SEND_SCRIPT} | zstd -3 -c | wc -c`, sendArgs(stream));
  ctx.say('slow link: zstd -19 --long=27 of the whole stream');
  const best = await timedShell(`${SEND_SCRIPT} | zstd -19 --long=27 -c | wc -c`, sendArgs(stream));
  const variants: SlowResult['variants'] = [];
  for (const setting of ['3', 'auto']) {
    ctx.say(`slow link: snapferry push --compress ${setting} at ${(scale.linkBytesPerSecond * 8) / 1e6} Mbit/s, cut every ${(scale.cutEveryBytes / 1e6).toFixed(1)} MB`);
    try {
      variants.push({ setting, ...(await pushOverLink(ctx, scale, setting)) });
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      ctx.say(`slow link: --compress ${setting} FAILED: ${message}`);
      variants.push({ setting, failed: message });
    }
  }
  return { rawBytes: stream.rawBytes, zstd3Bytes: Number(zstd.stdout.trim()), zstdBestBytes: Number(best.stdout.trim()), linkBytesPerSecond: scale.linkBytesPerSecond, cutEveryBytes: scale.cutEveryBytes, variants };
}

async function pushOverLink(ctx: LanContext, scale: Scale, compress: string): Promise<Omit<SlowVariant, 'setting'>> {
  const root = path.join(ctx.world.server.mountPoint, `root-slow-${compress}`);
  await settle(ctx.world.server);
  // At 2 Mbit/s logging costs nothing, and the server's account of each cut and resume is what a failure needs.
  const server = await BenchServer.start(ctx.cleanup, ctx.probes, { root, logLevel: 'info' });
  const proxy = await startChaosProxy({ target: { host: '127.0.0.1', port: server.port } });
  ctx.cleanup.after(() => proxy.close());
  try {
    proxy.setRate(scale.linkBytesPerSecond);
    proxy.cutEvery(scale.cutEveryBytes);
    await proxy.settled();
    proxy.resetStats();
    const line: LineTimeline = { samples: [], cuts: [] };
    const started = performance.now();
    const since = () => (performance.now() - started) / 1000;
    const sample = () => line.samples.push([since(), proxy.stats().upstreamBytes]);
    proxy.onCut(() => {
      line.cuts.push(since());
      ctx.say(`  cut #${proxy.stats().cuts}`);
    });
    sample();
    const sampler = setInterval(sample, LINE_SAMPLE_MS);
    const run = await runPush(ctx.cleanup, ctx.probes, { target: server, url: proxy.url, volume: 'bench', snapshot: ctx.world.slow.snapshot, compress }).finally(() => {
      clearInterval(sampler);
      sample();
    });
    const stats = proxy.stats();
    const name = path.basename(ctx.world.slow.snapshot);
    const transfer = (await server.transfers()).find((t) => t.snapshot === name && t.state === 'received');
    if (transfer === undefined) throw new Error(`the server lists no received transfer of ${name}`);
    for (const note of run.levelNotes) ctx.say(`  ${note}`);
    return {
      seconds: run.seconds,
      wireBytes: transfer.wireOffset,
      upstreamBytes: stats.upstreamBytes,
      cuts: stats.cuts,
      resentBytes: stats.upstreamBytes - transfer.wireOffset,
      frameBytes: transfer.chunkSize + FRAME_HEADER_SIZE,
      levelNotes: run.levelNotes,
      line,
    };
  } finally {
    await proxy.close();
    // A failure above is the error to report, not a server that then failed to stop.
    await server.stop().catch(() => undefined);
    await removeServerRoot(root);
  }
}
