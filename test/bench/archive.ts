/**
 * Archive rows (issue 23): the same push, through nginx with TLS, end to end (until the push returns: received and
 * checked), into
 *   a local btrfs server (serve --root)                       the baseline, measured in the same run
 *   an archive server (serve with store: on an S3 bucket), one instance behind nginx
 *   two archive instances on the one bucket behind nginx, which shares the requests between them (one push: its
 *   PATCHes land on either instance, each taking the upload's lease in the bucket for its request), as
 *   test/e2e/archive-instances.test.ts sets them up
 * The bucket is on a real Ceph RGW that the bench starts (test/fixtures/s3.ts: a one-node cluster on this machine, the
 * OSD in memory) and takes down at the end, also on failure or Ctrl-C (its cleanup step, and s3-cleanup.ts's exit
 * net). Without radosgw installed the rows are skipped, with what to install. RGW shares the machine's cores with
 * push and serve, so the ratios hold for this one-machine setup, not for a remote object store.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { s3ObjectStore } from '../../server/archive/object-store.ts';
import { startNginx } from '../fixtures/nginx.ts';
import { startS3, type S3Server } from '../fixtures/s3.ts';
import { createTestCertificates } from '../fixtures/tls.ts';
import type { LanContext, RunFigures, Skipped } from './lan.ts';
import { childrenOf, mbps, processCpuSeconds } from './measure.ts';
import { BenchServer, createToken, removeServerRoot, runPush, type ClientToken } from './snapferry.ts';
import { duration, rate, times, type Row, type TableSection } from './table.ts';
import { settle, type Stream } from './world.ts';

export const RGW_BIN = '/usr/bin/radosgw';
export const RGW_MISSING = `${RGW_BIN} is missing: install Ceph (apt-get install -y ceph-mon ceph-osd ceph-mgr radosgw ceph-common) for the archive rows`;

export interface ArchiveRun extends RunFigures {
  /** CPU seconds of the Ceph daemons (mon, osd, mgr, radosgw) during the push; null for the btrfs server. */
  storeCpuSeconds: number | null;
}

export interface ArchiveResult {
  rawBytes: number;
  /** `ceph --version`. */
  ceph: string;
  /** Runs of each kind; each row is the fastest of its kind's (its figures all from that one run). */
  rounds: number;
  btrfs: ArchiveRun;
  one: ArchiveRun;
  two: ArchiveRun;
}

/** What every run shares: TLS for nginx, the client's token, and the bucket's keys. */
interface Setup {
  certs: { caCert: string; serverCert: string; serverKey: string };
  tokens: ClientToken;
  dir: string;
}

export async function runArchive(ctx: LanContext, stream: Stream, rounds: number): Promise<ArchiveResult | Skipped> {
  if (!existsSync(RGW_BIN)) {
    ctx.say(`archive: skipping the archive rows: ${RGW_MISSING}`);
    return { skipped: RGW_MISSING };
  }
  ctx.say('archive: starting Ceph RGW (a one-node cluster, in-memory OSD; test/fixtures/s3.ts)');
  const s3 = await startS3(ctx.cleanup);
  const ceph = (await execa('ceph', ['--version'], { reject: false })).stdout.trim().replace(/ \([0-9a-f]{40}\)/, '');
  const dir = await mkdtemp(path.join(os.tmpdir(), `snapferry-bench-archive-${process.pid}-`));
  ctx.cleanup.after(() => rm(dir, { recursive: true, force: true }));
  const setup: Setup = { certs: await createTestCertificates(ctx.cleanup), tokens: await createToken(dir), dir };
  const bucket = 'bench';
  const admin = s3.client();
  try {
    await admin.send(new CreateBucketCommand({ Bucket: bucket }));
  } finally {
    admin.destroy();
  }
  const credentials = path.join(dir, 'store-credentials.yaml');
  await writeFile(credentials, `accessKeyId: ${s3.accessKeyId}\nsecretAccessKey: ${s3.secretAccessKey}\n`, { mode: 0o600 });

  const intoBtrfs = async (): Promise<ArchiveRun> => {
    ctx.say(`archive: ${path.basename(stream.snapshot)} into a local btrfs server, through nginx + TLS`);
    const root = path.join(ctx.world.server.mountPoint, 'root-archive-baseline');
    try {
      await settle(ctx.world.server);
      return await pushThrough(ctx, setup, stream, null, [{ root, auth: setup.tokens }]);
    } finally {
      await removeServerRoot(root);
      await settle(ctx.world.server);
    }
  };
  let runs = 0;
  const intoArchive = async (instances: number): Promise<ArchiveRun> => {
    ctx.say(`archive: ${path.basename(stream.snapshot)} into the archive, ${instances} serve instance${instances > 1 ? 's' : ''} behind nginx + TLS`);
    // A prefix per run: each starts from an empty archive, as the btrfs run starts from an empty root.
    const prefix = `run-${++runs}`;
    const config = path.join(dir, `${prefix}.yaml`);
    await writeFile(config, ['store:', `  endpoint: ${s3.endpoint}`, `  bucket: ${bucket}`, `  prefix: ${prefix}`, `  region: ${s3.region}`, `  credentials: ${credentials}`, ''].join('\n'));
    try {
      return await pushThrough(ctx, setup, stream, s3, Array.from({ length: instances }, () => ({ config, auth: setup.tokens })));
    } finally {
      // The OSD keeps the bucket in memory: free it for the next run.
      await emptyPrefix(s3, bucket, prefix);
    }
  };
  // Rounds in alternating order (btrfs, one, two, then two, one, btrfs), and the fastest of each kept: other work
  // on a shared machine comes and goes, and this way a slow spell does not land on one kind of run only.
  const kinds = [intoBtrfs, () => intoArchive(1), () => intoArchive(2)];
  const runsOf: ArchiveRun[][] = [[], [], []];
  for (let round = 0; round < rounds; round++) {
    const order = round % 2 === 0 ? [0, 1, 2] : [2, 1, 0];
    for (const k of order) runsOf[k]!.push(await kinds[k]!());
  }
  const [btrfs, one, two] = runsOf.map((r) => r.reduce((a, b) => (b.seconds < a.seconds ? b : a)));
  return { rawBytes: stream.rawBytes, ceph, rounds, btrfs: btrfs!, one: one!, two: two! };
}

/** Starts the servers and nginx in front of them, pushes once through nginx, and stops them all. */
async function pushThrough(
  ctx: LanContext,
  setup: Setup,
  stream: Stream,
  s3: S3Server | null,
  servers: ReadonlyArray<Parameters<typeof BenchServer.start>[2]>,
): Promise<ArchiveRun> {
  const started: BenchServer[] = [];
  for (const options of servers) started.push(await BenchServer.start(ctx.cleanup, ctx.probes, options));
  const nginx = await startNginx(ctx.cleanup, {
    upstream: started.map((s) => ({ host: '127.0.0.1', port: s.port })),
    cert: setup.certs.serverCert,
    key: setup.certs.serverKey,
  });
  try {
    const master = Number((await readFile(path.join(nginx.prefix, 'nginx.pid'), 'utf8')).trim());
    // TLS is terminated by nginx's worker: its CPU is the server side's too.
    const serverCpu = async (): Promise<number> =>
      sum(await Promise.all([...started.map((s) => s.cpuSeconds()), ...(await childrenOf(master)).map((pid) => processCpuSeconds(pid))]));
    const storeCpu = async (): Promise<number | null> => (s3 === null ? null : sum(await Promise.all(s3.pids().map((pid) => processCpuSeconds(pid)))));
    const [serverBefore, storeBefore] = [await serverCpu(), await storeCpu()];
    const run = await runPush(ctx.cleanup, ctx.probes, {
      target: started[0]!,
      url: nginx.url,
      volume: 'bench',
      snapshot: stream.snapshot,
      caFile: setup.certs.caCert,
      tokenFile: setup.tokens.tokenFile,
    });
    const serverCpuSeconds = (await serverCpu()) - serverBefore;
    const storeAfter = await storeCpu();
    const name = path.basename(stream.snapshot);
    const transfer = (await started[0]!.transfers()).find((t) => t.snapshot === name && t.state === 'received');
    if (transfer === undefined) throw new Error(`the server lists no received transfer of ${name}`);
    ctx.say(`  ${run.seconds.toFixed(1)} s, ${mbps(stream.rawBytes, run.seconds).toFixed(1)} MB/s`);
    return {
      seconds: run.seconds,
      mbps: mbps(stream.rawBytes, run.seconds),
      clientCpuSeconds: run.probe.cpuSeconds - ctx.startup.cpuSeconds,
      serverCpuSeconds,
      storeCpuSeconds: storeAfter === null || storeBefore === null ? null : storeAfter - storeBefore,
    };
  } finally {
    for (const s of started) await s.stop().catch(() => undefined);
    await nginx.stop();
  }
}

async function emptyPrefix(s3: S3Server, bucket: string, prefix: string): Promise<void> {
  const store = s3ObjectStore({ endpoint: s3.endpoint, bucket, prefix, region: s3.region, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey });
  for await (const o of store.list('')) await store.delete(o.key);
}

function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

export function archiveSection(a: ArchiveResult | Skipped): TableSection {
  const title = 'Archive (issue 23): serve with store: on an S3 bucket, against a local btrfs server';
  if ('skipped' in a) return { title, rows: [row('push into the archive, one and two instances', 'skipped', a.skipped)] };
  const run = (f: RunFigures): string => `${duration(f.seconds)}  ${rate(f.mbps)}`;
  const perGB = (cpu: number): string => `${(cpu / (a.rawBytes / 1e9)).toFixed(2)} s/GB`;
  const btrfs = `btrfs ${rate(a.btrfs.mbps)}`;
  const server = (f: ArchiveRun): number => f.serverCpuSeconds ?? 0;
  return {
    title:
      `${title}: ${(a.rawBytes / 1e6).toFixed(0)} MB full stream, push through nginx + TLS until received and checked; ` +
      `the bucket on ${a.ceph}, one node on this machine, OSD in memory; the fastest of ${a.rounds} run${a.rounds > 1 ? 's' : ''} each`,
    rows: [
      row('snapferry push into a local btrfs server', run(a.btrfs), '', times(1)),
      row('into the archive, one serve instance', run(a.one), btrfs, times(a.one.mbps / a.btrfs.mbps)),
      row('into the archive, two serve instances', run(a.two), btrfs, times(a.two.mbps / a.btrfs.mbps)),
      row('two instances against one', rate(a.two.mbps), `one ${rate(a.one.mbps)}`, times(a.two.mbps / a.one.mbps)),
      row('CPU, serve + nginx worker, archive, one instance', perGB(server(a.one)), `btrfs server ${perGB(server(a.btrfs))}`, times(server(a.one) / server(a.btrfs))),
      row('CPU, serve + nginx worker, archive, two instances', perGB(server(a.two)), `btrfs server ${perGB(server(a.btrfs))}`, times(server(a.two) / server(a.btrfs))),
      row('CPU, Ceph daemons (RGW, OSD, mon, mgr), one / two', `${perGB(a.one.storeCpuSeconds ?? 0)} / ${perGB(a.two.storeCpuSeconds ?? 0)}`),
      row('CPU, client: push (node + btrfs send), btrfs / one / two', `${perGB(a.btrfs.clientCpuSeconds)} / ${perGB(a.one.clientCpuSeconds)} / ${perGB(a.two.clientCpuSeconds)}`),
    ],
  };
}

function row(what: string, measured: string, baseline = '-', ratio = '', target = ''): Row {
  return { what, measured, baseline, ratio, target };
}
