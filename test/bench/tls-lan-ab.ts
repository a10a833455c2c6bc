/**
 * The LAN rows' http and nginx + TLS pushes, side by side, for comparing a change to the site file: the full stream
 * of the bench's mixed data pushed straight to `snapferry serve` over http, and through nginx with TLS running each
 * site file given (the committed nginx/snapferry.conf, a variant), in alternating rounds, as lan.ts pushes them.
 * Per push: wall seconds, and CPU seconds per GB of raw stream of the push, of serve (with its btrfs receive) and of
 * the nginx worker alone. A busy machine moves wall time by 2-3x; compare CPU, and ratios within a round.
 * SNAPFERRY_AB_COMPRESS=1 (or none, auto...) fixes the push's --compress: under load, auto's level moves the push's
 * CPU far more than TLS does.
 *
 *   node --import tsx test/bench/tls-lan-ab.ts [MiB=512] [rounds=3] nginx/snapferry.conf /tmp/variant.conf ...
 */
import path from 'node:path';
import { Cleanup } from './cleanup.ts';
import { perGB } from './measure.ts';
import { nginxSetup, pushOnce, type LanContext, type Route } from './lan.ts';
import { freePort } from '../e2e/processes.ts';
import { clientStartup, probeDir, removeServerRoot } from './snapferry.ts';
import { buildWorld, settle } from './world.ts';

const [mibArg, roundsArg, ...sites] = process.argv.slice(2);
const dataMiB = Number(mibArg ?? 512);
const rounds = Number(roundsArg ?? 3);
const compress = process.env.SNAPFERRY_AB_COMPRESS;
const siteFiles = (sites.length > 0 ? sites : ['nginx/snapferry.conf']).map((s) => path.resolve(s));

const started = performance.now();
const say = (line: string): void => void process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);

const cleanup = new Cleanup();
cleanup.installSignalHandlers();
try {
  const world = await buildWorld(
    cleanup,
    {
      dataMiB,
      quarterMiB: 4,
      slowMiB: 1,
      silentMiB: 1,
      linkBytesPerSecond: 250_000,
      cutEveryBytes: 1,
      silences: [],
      clientImageMiB: Math.max(1024, dataMiB * 4),
      serverImageMiB: Math.max(1024, dataMiB * 4),
      archiveStream: 'full',
      archiveRounds: 1,
    },
    say,
  );
  const probes = await probeDir(cleanup);
  const ctx: LanContext = { cleanup, world, probes, startup: await clientStartup(probes), say };
  const routes: Array<{ name: string; route: Route; port?: number }> = [{ name: 'http', route: {} }];
  for (const site of siteFiles) {
    const route = await nginxSetup(ctx, site);
    const port = await freePort();
    await route.start?.(port);
    routes.push({ name: `nginx ${path.basename(site)}`, route, port });
  }
  const s = world.full;
  process.stdout.write(`full stream ${(s.rawBytes / 1e6).toFixed(0)} MB raw, --compress ${compress || 'auto'}; CPU s/GB of raw stream\n`);
  process.stdout.write('round  route                          wall s   push   serve  nginx   all   wire MB  levels\n');
  for (let round = 1; round <= rounds; round++) {
    for (const r of routes) {
      const root = path.join(world.server.mountPoint, 'root-ab');
      await settle(world.server);
      const nginxBefore = (await r.route.extraServerCpu?.()) ?? 0;
      let f;
      try {
        f = await pushOnce(ctx, { root, route: r.route, stream: s, ...(compress ? { compress } : {}), ...(r.port !== undefined ? { port: r.port } : {}) });
      } finally {
        await removeServerRoot(root);
      }
      const nginx = ((await r.route.extraServerCpu?.()) ?? 0) - nginxBefore;
      const push = perGB(f.clientCpuSeconds, s.rawBytes);
      const serve = perGB((f.serverCpuSeconds ?? 0) - nginx, s.rawBytes);
      const ng = perGB(nginx, s.rawBytes);
      const levels = f.levelNotes.map((n) => /level (\d+)|compression off/.exec(n)?.[1] ?? 'off').join(',');
      process.stdout.write(
        `${String(round).padStart(5)}  ${r.name.padEnd(30)} ${f.seconds.toFixed(1).padStart(6)}  ${push.toFixed(2).padStart(5)}  ${serve.toFixed(2).padStart(5)}  ${ng.toFixed(2).padStart(5)}  ${(push + serve + ng).toFixed(2).padStart(5)}  ${(f.wireBytes / 1e6).toFixed(0).padStart(7)}  ${levels}\n`,
      );
    }
  }
} finally {
  say('cleaning up');
  await cleanup.run();
}
