/**
 * `npm run bench`: snapferry against its baselines on this machine (issue 6), every figure measured in this one run
 * on loop-mounted btrfs, printed as one table on stdout (progress goes to stderr). Needs root. See USAGE in
 * options.ts, and README.md "Performance" for what each row means.
 */
import { existsSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import { execa } from 'execa';
import { DEFAULT_CLIENT_CONFIG } from '../../client/config.ts';
import { DEFAULT_SERVER_CONFIG } from '../../server/config.ts';
import { isRoot, NOT_ROOT_MESSAGE } from '../fixtures/btrfs.ts';
import { NGINX_BIN } from '../fixtures/nginx.ts';
import { runArchive } from './archive.ts';
import { Cleanup } from './cleanup.ts';
import { runDigest } from './digest.ts';
import { runHashing } from './hashing.ts';
import { runLan, type LanContext } from './lan.ts';
import { runOneCore } from './one-core.ts';
import { parseBenchArgs, USAGE, type BenchOptions, type Section } from './options.ts';
import { buildSections, type BenchResults } from './report.ts';
import { runRss } from './rss.ts';
import { runSilentLine } from './silent-line.ts';
import { runSlowLink } from './slow-link.ts';
import { clientStartup, probeDir } from './snapferry.ts';
import { renderTable } from './table.ts';
import { buildWorld } from './world.ts';

const started = performance.now();
const say = (line: string): void => {
  process.stderr.write(`[${((performance.now() - started) / 1000).toFixed(0).padStart(4)} s] ${line}\n`);
};

async function main(options: BenchOptions, cleanup: Cleanup): Promise<void> {
  const results: BenchResults = {
    startedAt: new Date().toISOString(),
    seconds: 0,
    quick: options.quick,
    machine: await machine(),
    load: { start: os.loadavg()[0]!, end: 0 },
    startup: { cpuSeconds: 0, maxRssBytes: 0 },
    data: { bytes: 0, files: 0, seconds: 0 },
    lan: null,
    rss: null,
    oneCore: null,
    slow: null,
    silent: null,
    hashing: null,
    digest: null,
    archive: null,
    failed: {},
  };
  const world = await buildWorld(cleanup, options.scale, say);
  results.data = world.data;
  const probes = await probeDir(cleanup);
  results.startup = await clientStartup(probes);
  const ctx: LanContext = { cleanup, world, probes, startup: results.startup, say };

  // Hashing first: its `btrfs send > /dev/null` runs are timed before anything has written to the server side.
  const sections: Array<[Section, () => Promise<void>]> = [
    ['hash', async () => void (results.hashing = await runHashing(cleanup, world.full, say))],
    ['digest', async () => void (results.digest = await runDigest(world, say))],
    ['lan', async () => void (results.lan = await runLan(ctx))],
    ['rss', async () => void (results.rss = await runRss(ctx, results.lan?.full.direct ?? null))],
    ['onecore', async () => void (results.oneCore = await runOneCore(ctx))],
    ['slow', async () => void (results.slow = await runSlowLink(ctx, options.scale))],
    ['silent', async () => void (results.silent = await runSilentLine(ctx, options.scale))],
    ['archive', async () => void (results.archive = await runArchive(ctx, options.scale.archiveStream === 'full' ? world.full : world.quarter, options.scale.archiveRounds))],
  ];
  for (const [name, run] of sections) {
    if (!options.only.has(name)) continue;
    // A section that fails is reported in the table; the others still run and print.
    try {
      await run();
    } catch (err) {
      results.failed[name] = err instanceof Error ? err.message : String(err);
      say(`${name} FAILED: ${results.failed[name]}`);
    }
  }
  results.seconds = (performance.now() - started) / 1000;
  results.load.end = os.loadavg()[0]!;

  const m = results.machine;
  const title =
    `snapferry bench${options.quick ? ' (--quick: small sizes, figures dominated by fixed costs)' : ''}, ${results.startedAt.slice(0, 16)}Z: ` +
    `${m.cpus} CPUs, Linux ${m.kernel}, ${m.btrfsProgs}, node ${m.node}; ` +
    `${(world.data.bytes / 1e6).toFixed(0)} MB of mixed data in ${world.data.files} files; ran ${(results.seconds / 60).toFixed(1)} min; ` +
    `load average ${results.load.start.toFixed(1)} at start, ${results.load.end.toFixed(1)} at end` +
    (results.load.start > m.cpus / 2 || results.load.end > m.cpus ? ' (BUSY: other work skewed these figures)' : '');
  const table = buildSections(results);
  process.stdout.write(`\n${renderTable(title, table)}\n`);
  if (options.json !== null) {
    await writeFile(options.json, `${JSON.stringify({ ...results, table }, null, 2)}\n`);
    say(`wrote ${options.json}`);
  }
  const variantFailed = results.slow?.variants.some((v) => 'failed' in v) || results.silent?.silences.some((v) => 'failed' in v);
  if (Object.keys(results.failed).length > 0 || variantFailed) process.exitCode = 1;
}

async function machine(): Promise<BenchResults['machine']> {
  const progs = await execa('btrfs', ['--version'], { reject: false });
  return { cpus: os.availableParallelism(), kernel: os.release(), btrfsProgs: progs.stdout.trim(), node: process.version };
}

/** What the bench cannot run without, said before it builds anything. */
function missing(): string[] {
  const problems: string[] = [];
  if (!isRoot) problems.push(`the bench ${NOT_ROOT_MESSAGE}`);
  for (const [bin, what] of [['/usr/bin/zstd', 'zstd (apt-get install -y zstd)'], [NGINX_BIN, 'nginx (apt-get install -y nginx)']] as const) {
    if (!existsSync(bin)) problems.push(`${bin} is missing: install ${what}`);
  }
  // push and serve read these whenever they exist, and their keys (a rate limit, a level, limits) would skew the rows.
  for (const config of [DEFAULT_CLIENT_CONFIG, DEFAULT_SERVER_CONFIG]) {
    if (existsSync(config)) problems.push(`${config} exists: the bench's snapferry processes would use it; move it aside while the bench runs`);
  }
  return problems;
}

const parsed = parseBenchArgs(process.argv.slice(2));
if (parsed === 'help') {
  process.stdout.write(`${USAGE}\n`);
} else if (missing().length > 0) {
  process.stderr.write(`${missing().join('\n')}\n`);
  process.exitCode = 1;
} else {
  // Before any fixture exists: its signal handler must kill the servers before the fixtures unmount under them.
  const cleanup = new Cleanup();
  cleanup.installSignalHandlers();
  try {
    await main(parsed, cleanup);
  } catch (err) {
    process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  } finally {
    say('cleaning up');
    await cleanup.run();
  }
}
