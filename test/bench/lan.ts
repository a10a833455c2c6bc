/**
 * LAN rows: the full and the incremental stream end to end, from the start of the command until the receiving side
 * has the snapshot (for snapferry: until `push` returns, i.e. the server has received and checked it), through
 *   btrfs send | btrfs receive                      the pipe: the ceiling
 *   btrfs send | tee spool | btrfs receive           the pipe writing the stream once more, fsynced: the ceiling for
 *                                                    any receiver that keeps what it was sent until it is received,
 *                                                    as resuming needs (snapferry's spool does this)
 *   btrfs send | ssh 127.0.0.1 btrfs receive         what people use today (a private sshd; skipped without one)
 *   snapferry push, http on loopback                 straight to `snapferry serve`
 *   snapferry push through nginx with TLS            as deployed (nginx/snapferry.conf, tokens, --ca-file)
 * with CPU seconds on each side. Every run receives into a fresh directory or server root, deleted afterwards.
 */
import { mkdir, mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import * as btrfs from '../../core/btrfs/index.ts';
import { freePort } from '../e2e/processes.ts';
import { startNginx } from '../fixtures/nginx.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import type { Cleanup } from './cleanup.ts';
import { childrenOf, mbps, processCpuSeconds, timedShell } from './measure.ts';
import { BenchServer, createToken, removeServerRoot, runPush, type ClientStartup, type ClientToken, type Probes } from './snapferry.ts';
import { sshdAvailable, SSHD_MISSING, startSshd } from './ssh.ts';
import { SEND_SCRIPT, sendArgs, settle, type Stream, type World } from './world.ts';

export interface RunFigures {
  seconds: number;
  mbps: number;
  /** CPU seconds of the sending side (the pipe: both sides together). */
  clientCpuSeconds: number;
  /** CPU seconds of the receiving side; null for the pipe, where it is counted in clientCpuSeconds. */
  serverCpuSeconds: number | null;
}

export interface SnapferryFigures extends RunFigures {
  /** The framed stream the server holds: the upload's final length. */
  wireBytes: number;
  clientMaxRssBytes: number;
  serverMaxRssBytes: number;
  /** The push's notes on its compression level, in order. */
  levelNotes: string[];
}

export type Skipped = { skipped: string };

export interface LanStreamResult {
  rawBytes: number;
  /** `zstd -3` of the whole stream: what snapferry's wire bytes are held against. */
  zstd3Bytes: number;
  pipe: RunFigures;
  /** The pipe with a copy of the stream written to the server's filesystem and fsynced, as a spool is. */
  pipeSpool: RunFigures;
  ssh: RunFigures | Skipped;
  direct: SnapferryFigures;
  nginx: SnapferryFigures;
}

export interface LanResult {
  full: LanStreamResult;
  incremental: LanStreamResult;
}

export interface LanContext {
  cleanup: Cleanup;
  world: World;
  probes: Probes;
  startup: ClientStartup;
  say: (line: string) => void;
}

export async function runLan(ctx: LanContext): Promise<LanResult> {
  const { world, say } = ctx;
  const streams = [world.full, world.incremental] as const;
  say('LAN: zstd -3 of each whole stream');
  const zstd3 = await Promise.all(streams.map(async (s) => Number((await timedShell(`${SEND_SCRIPT} | zstd -3 -c | wc -c`, sendArgs(s))).stdout.trim())));
  say('LAN: btrfs send | btrfs receive');
  const pipe = await baseline(ctx, 'pipe', (s, dir) => timedShell(`${SEND_SCRIPT} | btrfs receive -q "$3"`, [...sendArgs(s), dir]));
  say('LAN: btrfs send | tee spool | btrfs receive');
  const pipeSpool = await baseline(ctx, 'spool', (s, dir) =>
    timedShell(`${SEND_SCRIPT} | tee "$3/stream.spool" | btrfs receive -q "$3" && sync "$3/stream.spool"`, [...sendArgs(s), dir]),
  );

  let ssh: [RunFigures, RunFigures] | Skipped;
  if (sshdAvailable()) {
    say('LAN: btrfs send | ssh 127.0.0.1 btrfs receive');
    const sshd = await startSshd(ctx.cleanup);
    ssh = await baseline(ctx, 'ssh', async (s, dir) => {
      const before = await sshd.serverCpuSeconds();
      const run = await timedShell(`${SEND_SCRIPT} | ssh "\${@:3}"`, [...sendArgs(s), ...sshd.sshArgs(['btrfs', 'receive', '-q', dir])]);
      return { ...run, serverCpuSeconds: (await sshd.serverCpuSeconds()) - before };
    });
  } else {
    say(`LAN: skipping the ssh row: ${SSHD_MISSING}`);
    ssh = { skipped: SSHD_MISSING };
  }

  say('LAN: snapferry push, http on loopback');
  const direct = await pushBoth(ctx, 'direct', {});
  say('LAN: snapferry push through nginx with TLS');
  const nginx = await pushBoth(ctx, 'nginx', await nginxSetup(ctx));

  const row = (i: 0 | 1): LanStreamResult => ({
    rawBytes: streams[i].rawBytes,
    zstd3Bytes: zstd3[i]!,
    pipe: pipe[i],
    pipeSpool: pipeSpool[i],
    ssh: 'skipped' in ssh ? ssh : ssh[i],
    direct: direct[i],
    nginx: nginx[i],
  });
  return { full: row(0), incremental: row(1) };
}

/** Receives the full stream and then the incremental into a fresh directory of the server filesystem. */
async function baseline(
  ctx: LanContext,
  name: string,
  run: (s: Stream, dir: string) => Promise<{ seconds: number; cpuSeconds: number; serverCpuSeconds?: number }>,
): Promise<[RunFigures, RunFigures]> {
  const dir = path.join(ctx.world.server.mountPoint, `baseline-${name}`);
  await mkdir(dir);
  const figures: RunFigures[] = [];
  try {
    for (const s of [ctx.world.full, ctx.world.incremental]) {
      await settle(ctx.world.server);
      const r = await run(s, dir);
      figures.push({ seconds: r.seconds, mbps: mbps(s.rawBytes, r.seconds), clientCpuSeconds: r.cpuSeconds, serverCpuSeconds: r.serverCpuSeconds ?? null });
      ctx.say(`  ${s.parent === null ? 'full' : 'incremental'}: ${r.seconds.toFixed(1)} s, ${mbps(s.rawBytes, r.seconds).toFixed(1)} MB/s`);
    }
  } finally {
    for (const snap of [ctx.world.incremental, ctx.world.full]) {
      const received = path.join(dir, path.basename(snap.snapshot));
      if (await btrfs.isSubvolume(received)) await btrfs.deleteSubvolume(received);
    }
    await rm(dir, { recursive: true, force: true });
    await settle(ctx.world.server);
  }
  return figures as [RunFigures, RunFigures];
}

export interface Route {
  /** Where the client connects (absent: straight to the server). */
  url?: (serverPort: number) => string;
  caFile?: string;
  tokens?: ClientToken;
  /** CPU of whatever else handles the bytes on the server side (nginx). */
  extraServerCpu?: () => Promise<number>;
  /** Starts what sits in front of the server, once its port is known. */
  start?: (serverPort: number) => Promise<void>;
}

/** A fresh server root; the full stream, then the incremental, each served by a server process of its own. */
async function pushBoth(ctx: LanContext, name: string, route: Route): Promise<[SnapferryFigures, SnapferryFigures]> {
  const root = path.join(ctx.world.server.mountPoint, `root-${name}`);
  // One port for both server processes, so that nginx (started once) reaches either.
  const port = await freePort();
  await route.start?.(port);
  const figures: SnapferryFigures[] = [];
  try {
    for (const s of [ctx.world.full, ctx.world.incremental]) {
      await settle(ctx.world.server);
      figures.push(await pushOnce(ctx, { root, port, route, stream: s }));
    }
  } finally {
    await removeServerRoot(root);
    await settle(ctx.world.server);
  }
  return figures as [SnapferryFigures, SnapferryFigures];
}

export interface PushOnceOptions {
  root: string;
  port?: number;
  route: Route;
  stream: Stream;
  /** CPUs for each side (taskset lists): a small machine at each end. */
  cpus?: { client: string; server: string };
  /** `--compress` for the push (default: snapferry's own, auto). */
  compress?: string;
}

export async function pushOnce(ctx: LanContext, o: PushOnceOptions): Promise<SnapferryFigures> {
  const server = await BenchServer.start(ctx.cleanup, ctx.probes, {
    root: o.root,
    ...(o.port ? { port: o.port } : {}),
    ...(o.route.tokens ? { auth: o.route.tokens } : {}),
    ...(o.cpus ? { cpus: o.cpus.server } : {}),
  });
  const before = (await server.cpuSeconds()) + ((await o.route.extraServerCpu?.()) ?? 0);
  const run = await runPush(ctx.cleanup, ctx.probes, {
    target: server,
    ...(o.route.url ? { url: o.route.url(server.port) } : {}),
    volume: 'bench',
    snapshot: o.stream.snapshot,
    ...(o.route.caFile ? { caFile: o.route.caFile } : {}),
    ...(o.route.tokens ? { tokenFile: o.route.tokens.tokenFile } : {}),
    ...(o.cpus ? { cpus: o.cpus.client } : {}),
    ...(o.compress ? { compress: o.compress } : {}),
  });
  const serverCpu = (await server.cpuSeconds()) + ((await o.route.extraServerCpu?.()) ?? 0) - before;
  const name = path.basename(o.stream.snapshot);
  const transfer = (await server.transfers()).find((t) => t.snapshot === name && t.state === 'received');
  const serverProbe = await server.stop();
  if (transfer === undefined) throw new Error(`the server lists no received transfer of ${name}`);
  ctx.say(`  ${name}: ${run.seconds.toFixed(1)} s, ${mbps(o.stream.rawBytes, run.seconds).toFixed(1)} MB/s`);
  for (const note of run.levelNotes) ctx.say(`    ${note}`);
  return {
    seconds: run.seconds,
    mbps: mbps(o.stream.rawBytes, run.seconds),
    clientCpuSeconds: run.probe.cpuSeconds - ctx.startup.cpuSeconds,
    serverCpuSeconds: serverCpu,
    wireBytes: transfer.wireOffset,
    clientMaxRssBytes: run.probe.maxRssBytes,
    serverMaxRssBytes: serverProbe.maxRssBytes,
    levelNotes: run.levelNotes,
  };
}

/**
 * nginx with TLS in front of the server port, a CA the client trusts through --ca-file, and a client token. `site`:
 * another site file than the committed one, for a bench comparing a change to it (test/bench/tls-lan-ab.ts).
 */
export async function nginxSetup(ctx: LanContext, site?: string): Promise<Route> {
  const certs = await createTestCertificates(ctx.cleanup);
  const dir = await mkdtemp(path.join(os.tmpdir(), `snapferry-bench-token-${process.pid}-`));
  ctx.cleanup.after(() => rm(dir, { recursive: true, force: true }));
  let nginxUrl = '';
  let masterPid = 0;
  return {
    caFile: certs.caCert,
    tokens: await createToken(dir),
    url: () => nginxUrl,
    start: async (serverPort) => {
      const nginx = await startNginx(ctx.cleanup, {
        upstream: { host: '127.0.0.1', port: serverPort },
        cert: certs.serverCert,
        key: certs.serverKey,
        ...(site !== undefined ? { site } : {}),
      });
      nginxUrl = nginx.url;
      masterPid = Number((await readFile(path.join(nginx.prefix, 'nginx.pid'), 'utf8')).trim());
    },
    // TLS is terminated by nginx's worker: its CPU is the server side's too.
    extraServerCpu: async () => {
      const workers = await childrenOf(masterPid);
      const cpu = await Promise.all(workers.map((pid) => processCpuSeconds(pid)));
      return cpu.reduce((a, b) => a + b, 0);
    },
  };
}
