/**
 * Serve's CPU per GB of a LAN restore for code variants side by side: the bench's full (or quarter) stream pushed
 * once, then restored with `snapferry restore --no-verify` over loopback into a fresh folder of the client's btrfs,
 * serve pinned to one CPU and restore to the other (one-core.ts), by a serve process of its own for each restore with
 * SNAPFERRY_AB_VARIANT set to each value in turn, round after round in alternating order, so that every variant sees
 * the same minutes of a busy machine. What a variant changes is the code's business (read the variable where the
 * experiment is); this prints serve's CPU (node + btrfs send) per GB of raw stream, its peak RSS, each variant's mean,
 * and the load average around each restore.
 *
 *   node --import tsx test/bench/restore-cpu-ab.ts [rounds=3] [full|quarter] variant...
 */
import os from 'node:os';
import path from 'node:path';
import { mkdir, rm } from 'node:fs/promises';
import * as btrfs from '../../core/btrfs/index.ts';
import { alternateVariants, withAbBench } from './ab-rounds.ts';
import { BenchServer, removeServerRoot, runPush, runRestore } from './snapferry.ts';
import { ONE_CORE } from './one-core.ts';
import { settle } from './world.ts';

const [roundsArg, streamArg, ...variants] = process.argv.slice(2);
const load = (): string => os.loadavg().map((l) => l.toFixed(2)).join(' ');
await withAbBench(streamArg, async (bench) => {
  const { cleanup, world, probes, stream, say } = bench;
  const name = path.basename(stream.snapshot);
  const root = path.join(world.server.mountPoint, 'root-restore-ab');
  cleanup.after(() => removeServerRoot(root));
  const pusher = await BenchServer.start(cleanup, probes, { root });
  await runPush(cleanup, probes, { target: pusher, volume: 'bench', snapshot: stream.snapshot });
  await pusher.stop();
  say(`pushed ${name}: ${(stream.rawBytes / 1e6).toFixed(0)} MB of raw stream`);
  await alternateVariants(bench, Number(roundsArg ?? 3), variants, async (variant, r) => {
    const dest = path.join(world.client.mountPoint, `restore-ab-${r}-${variant}`);
    await mkdir(dest);
    await settle(world.server);
    await settle(world.client);
    const server = await BenchServer.start(cleanup, probes, { root, cpus: ONE_CORE.server });
    try {
      const loadBefore = load();
      const before = await server.cpuSeconds();
      const run = await runRestore(cleanup, probes, { target: server, volume: 'bench', snapshot: name, destDir: dest, cpus: ONE_CORE.client });
      const perGb = ((await server.cpuSeconds()) - before) / (stream.rawBytes / 1e9);
      const probe = await server.stop();
      say(`round ${r + 1} variant '${variant}': serve ${perGb.toFixed(2)} s/GB, ${run.seconds.toFixed(1)} s, serve peak RSS ${(probe.maxRssBytes / 1e6).toFixed(0)} MB, restore CPU ${(run.probe.cpuSeconds / (stream.rawBytes / 1e9)).toFixed(2)} s/GB; load ${loadBefore} -> ${load()}`);
      return perGb;
    } finally {
      const restored = path.join(dest, name);
      if (await btrfs.isSubvolume(restored)) await btrfs.deleteSubvolume(restored);
      await rm(dest, { recursive: true, force: true });
    }
  });
});
