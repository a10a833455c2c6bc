/**
 * A small machine at each end (issue 22): the full stream pushed with `snapferry push` restricted to one CPU and
 * `snapferry serve` to another (taskset; the btrfs command, workers and threads each starts inherit it), beside the
 * same baselines restricted the same way in the same run:
 *   btrfs send | tee spool | btrfs receive       send on the client's CPU; tee and receive on the server's
 *   btrfs send | ssh 127.0.0.1 btrfs receive     send and ssh on the client's CPU; sshd and receive on the server's
 * Both sides still share the machine's memory and disk, but neither can borrow the other's core: what a push costs
 * on a single-core NAS and a single-core laptop, and which side bounds it.
 */
import { mkdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as btrfs from '../../core/btrfs/index.ts';
import { mbps, timedShell } from './measure.ts';
import { pushOnce, type LanContext, type RunFigures, type SnapferryFigures, type Skipped } from './lan.ts';
import { pinTo, removeServerRoot } from './snapferry.ts';
import { sshdAvailable, SSHD_MISSING, startSshd } from './ssh.ts';
import { SEND_SCRIPT, sendArgs, settle } from './world.ts';

/** The client's CPU and the server's: the first two the machine has. */
export const ONE_CORE = { client: '0', server: '1' } as const;

export interface OneCoreResult {
  rawBytes: number;
  cpus: { client: string; server: string };
  pipeSpool: RunFigures;
  ssh: RunFigures | Skipped;
  push: SnapferryFigures;
}

/** Pins the script's own shell, hence everything it starts, to $3; the receiving side re-pins itself to $4. */
const PIN_SHELL = 'taskset -p -c "$3" $$ > /dev/null';

export async function runOneCore(ctx: LanContext): Promise<OneCoreResult | Skipped> {
  if (os.availableParallelism() < 2) return { skipped: 'needs 2 CPUs: one for each side' };
  const { world, say } = ctx;
  const s = world.full;
  const cpus = { ...ONE_CORE };
  const pinned = [...sendArgs(s), cpus.client, cpus.server] as const;

  say(`one core each (client CPU ${cpus.client}, server CPU ${cpus.server}): btrfs send | tee spool | btrfs receive`);
  const pipeSpool = await inFreshDir(ctx, 'one-core-spool', async (dir) =>
    timedShell(`${PIN_SHELL}\n${SEND_SCRIPT} | taskset -c "$4" tee "$5/stream.spool" | taskset -c "$4" btrfs receive -q "$5" && sync "$5/stream.spool"`, [...pinned, dir]),
  );

  let ssh: RunFigures | Skipped;
  if (sshdAvailable()) {
    say('one core each: btrfs send | ssh 127.0.0.1 btrfs receive');
    const sshd = await startSshd(ctx.cleanup);
    // Every session sshd forks, and the receive it runs, inherit the listener's CPU.
    await pinTo(sshd.pid, cpus.server);
    ssh = await inFreshDir(ctx, 'one-core-ssh', async (dir) => {
      const before = await sshd.serverCpuSeconds();
      const run = await timedShell(`${PIN_SHELL}\n${SEND_SCRIPT} | ssh "\${@:5}"`, [...pinned, ...sshd.sshArgs(['btrfs', 'receive', '-q', dir])]);
      return { ...run, serverCpuSeconds: (await sshd.serverCpuSeconds()) - before };
    });
  } else {
    ssh = { skipped: SSHD_MISSING };
  }

  say('one core each: snapferry push, http on loopback');
  const root = path.join(world.server.mountPoint, 'root-one-core');
  await settle(world.server);
  let push: SnapferryFigures;
  try {
    push = await pushOnce(ctx, { root, route: {}, stream: s, cpus });
  } finally {
    await removeServerRoot(root);
    await settle(world.server);
  }
  return { rawBytes: s.rawBytes, cpus, pipeSpool, ssh, push };

  async function inFreshDir(
    c: LanContext,
    name: string,
    run: (dir: string) => Promise<{ seconds: number; cpuSeconds: number; serverCpuSeconds?: number }>,
  ): Promise<RunFigures> {
    const dir = path.join(c.world.server.mountPoint, name);
    await mkdir(dir);
    try {
      await settle(c.world.server);
      const r = await run(dir);
      c.say(`  ${r.seconds.toFixed(1)} s, ${mbps(s.rawBytes, r.seconds).toFixed(1)} MB/s`);
      return { seconds: r.seconds, mbps: mbps(s.rawBytes, r.seconds), clientCpuSeconds: r.cpuSeconds, serverCpuSeconds: r.serverCpuSeconds ?? null };
    } finally {
      const received = path.join(dir, path.basename(s.snapshot));
      if (await btrfs.isSubvolume(received)) await btrfs.deleteSubvolume(received);
      await rm(dir, { recursive: true, force: true });
      await settle(c.world.server);
    }
  }
}
