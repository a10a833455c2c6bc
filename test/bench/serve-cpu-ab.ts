/**
 * Serve's CPU per GB for code variants side by side: the one-core row's push (push on CPU 0, serve on CPU 1, the
 * bench's full or quarter stream), repeated with SNAPFERRY_AB_VARIANT set to each of the given values in turn, round
 * after round, so that every variant sees the same minutes of a busy machine. What a variant changes is the code's
 * business (read the variable where the experiment is); this prints serve's CPU (node + btrfs receive) per GB of raw
 * stream for each push, and each variant's mean. SNAPFERRY_BENCH_NODE_OPTIONS (measure.ts) adds node options to every
 * snapferry process, e.g. a preload that writes serve's CPU per thread or a CPU profile when it exits.
 *
 *   node --import tsx test/bench/serve-cpu-ab.ts [rounds=3] [full|quarter] [compress=auto|none|1..19] variant...
 *
 * SNAPFERRY_AB_UNPINNED=1 lets push and serve run on every core, as the bench's LAN rows do, instead of one each.
 */
import path from 'node:path';
import { alternateVariants, withAbBench } from './ab-rounds.ts';
import { pushOnce, type LanContext } from './lan.ts';
import { clientStartup, removeServerRoot } from './snapferry.ts';
import { ONE_CORE } from './one-core.ts';
import { settle } from './world.ts';

const [roundsArg, streamArg, compress, ...variants] = process.argv.slice(2);
await withAbBench(streamArg, async (bench) => {
  const { cleanup, world, probes, stream, say } = bench;
  const ctx: LanContext = { cleanup, world, probes, startup: await clientStartup(probes), say };
  await alternateVariants(bench, Number(roundsArg ?? 3), variants, async (variant, r) => {
    const root = path.join(world.server.mountPoint, `root-ab-${r}-${variant}`);
    await settle(world.server);
    try {
      // A variant named c1..c19 or cnone pushes with that --compress instead.
      const level = /^c(\d+|none)$/.exec(variant)?.[1] ?? compress;
      const push = await pushOnce(ctx, { root, route: {}, stream, ...(process.env.SNAPFERRY_AB_UNPINNED ? {} : { cpus: { ...ONE_CORE } }), ...(level && level !== 'auto' ? { compress: level } : {}) });
      const perGb = (push.serverCpuSeconds ?? Number.NaN) / (stream.rawBytes / 1e9);
      say(`round ${r + 1} variant '${variant}': serve ${perGb.toFixed(2)} s/GB, ${push.seconds.toFixed(1)} s, wire ${(push.wireBytes / 1e6).toFixed(0)} MB, serve peak RSS ${((push.serverMaxRssBytes ?? 0) / 1e6).toFixed(0)} MB, push's ${(push.clientMaxRssBytes / 1e6).toFixed(0)} MB, push CPU ${(push.clientCpuSeconds / (stream.rawBytes / 1e9)).toFixed(2)} s/GB`);
      return perGb;
    } finally {
      await removeServerRoot(root);
      await settle(world.server);
    }
  });
});
