/**
 * GET /metrics: the server in Prometheus's text format (version 0.0.4), through prom-client with registries of our
 * own, never prom-client's global one. Every snapferry figure is read from the catalog, the spool and the disk at
 * scrape time, so it survives a restart and cannot drift from what GET /v1/status and `snapferry status` show; the
 * totals are counters over the transfers the catalog holds (an abort, a rewind or a catalog pruned by hand lowers
 * them, which Prometheus takes as a counter reset).
 *
 * Who sees what: the same bearer gate as every request. An admin token sees every client's series; a client token
 * only those labelled with its own client. The series that carry no client (free space, version, the process
 * metrics) are the server's, as GET /v1/status shows them to any client.
 */
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { transferStates, waitingStates } from '../core/protocol.ts';
import type { SafeName } from '../core/names.ts';
import type { AppService } from './app-service.ts';
import type { Caller } from './auth.ts';
import { clientsFor } from './views.ts';

export const METRICS_PATH = '/metrics';

let processRegistry: Registry | null = null;

/**
 * process_* and nodejs_* are the process's, not a server's: one registry for all servers in a process. Started by
 * `serve` at start-up (startProcessMetrics), not at the first scrape: prom-client samples some of them (event loop
 * lag, GC) only while its collectors exist.
 */
export function startProcessMetrics(): void {
  processMetrics();
}

function processMetrics(): Registry {
  if (processRegistry === null) {
    processRegistry = new Registry();
    // prom-client counts CPU from the moment its collector is made; the process used CPU before (loading, start-up).
    // What it used until just before is added once, so the counters count from the process's start, as
    // Prometheus's own process collectors (from /proc) do.
    const before = process.cpuUsage();
    collectDefaultMetrics({ register: processRegistry });
    const add = (name: string, micros: number) => (processRegistry?.getSingleMetric(name) as Counter | undefined)?.inc(micros / 1e6);
    add('process_cpu_user_seconds_total', before.user);
    add('process_cpu_system_seconds_total', before.system);
    add('process_cpu_seconds_total', before.user + before.system);
  }
  return processRegistry;
}

export interface Scrape {
  contentType: string;
  body: string;
}

/** The exposition for one scrape, of what `caller` may see. */
/** What a scrape reads of the server's core. */
type MetricsSource = Pick<AppService, 'status' | 'clients' | 'clientFacts'>;

export async function scrapeMetrics(service: MetricsSource, caller: Caller): Promise<Scrape> {
  const registry = new Registry();
  await fillServer(registry, service);
  await fillClients(registry, service, clientsFor(service, caller, undefined));
  const merged = Registry.merge([processMetrics(), registry]);
  return { contentType: merged.contentType, body: await merged.metrics() };
}

/** The series that carry no client: the same facts GET /v1/status gives every caller. */
async function fillServer(registry: Registry, service: MetricsSource): Promise<void> {
  const registers = [registry];
  const status = await service.status();
  new Gauge({ name: 'snapferry_info', help: 'Always 1; the server version is in the label', labelNames: ['version'], registers }).set({ version: status.version }, 1);
  if (status.freeBytes !== null) {
    new Gauge({ name: 'snapferry_free_bytes', help: 'Bytes free for the server on the filesystem of its root', registers }).set(status.freeBytes);
  }
}

async function fillClients(registry: Registry, service: MetricsSource, clients: readonly SafeName[]): Promise<void> {
  const registers = [registry];
  const byVolume = ['client', 'volume'] as const;
  const byClient = ['client'] as const;
  const snapshots = new Gauge({ name: 'snapferry_snapshots', help: 'Snapshots the server holds', labelNames: byVolume, registers });
  const altered = new Gauge({
    name: 'snapferry_altered_snapshots',
    help: 'Received snapshots changed by hand on the server (made writable, Received UUID cleared): kept, never used as parents',
    labelNames: byVolume,
    registers,
  });
  const snapshotBytes = new Gauge({ name: 'snapferry_snapshots_raw_bytes', help: 'Raw send-stream bytes of the snapshots the server holds', labelNames: byVolume, registers });
  const newest = new Gauge({
    name: 'snapferry_newest_snapshot_timestamp_seconds',
    help: 'When the newest snapshot the server holds was received (Unix time)',
    labelNames: byVolume,
    registers,
  });
  const transfers = new Gauge({ name: 'snapferry_transfers', help: 'Transfers the catalog holds, by state', labelNames: ['client', 'state'], registers });
  const failed = new Gauge({ name: 'snapferry_failed_transfers', help: 'Failed transfers, by error code (upload_expired: abandoned)', labelNames: ['client', 'code'], registers });
  const uploaded = new Counter({ name: 'snapferry_uploaded_bytes_total', help: 'Framed bytes uploaded and verified, over the transfers the catalog holds', labelNames: byClient, registers });
  const received = new Counter({ name: 'snapferry_received_bytes_total', help: 'Raw send-stream bytes of the transfers received', labelNames: byClient, registers });
  const interruptions = new Counter({ name: 'snapferry_interruptions_total', help: 'Uploads cut short (a PATCH that ended before its body did)', labelNames: byClient, registers });
  const receiveFailures = new Counter({ name: 'snapferry_receive_failures_total', help: 'Transfers whose stream arrived whole but whose receive failed', labelNames: byClient, registers });
  const receiving = new Gauge({
    name: 'snapferry_receiving_raw_bytes',
    help: 'Raw send-stream bytes fed so far to the btrfs receives running beside their uploads',
    labelNames: byClient,
    registers,
  });
  const spool = new Gauge({ name: 'snapferry_spool_bytes', help: 'Bytes of unfinished or failed uploads on disk (spool, frame index, tus record)', labelNames: byClient, registers });
  const waitingRaw = new Gauge({
    name: 'snapferry_waiting_raw_bytes',
    help: 'Raw send-stream bytes of whole streams whose receive waits (waiting_for_space, waiting_to_retry)',
    labelNames: byClient,
    registers,
  });
  const neededFree = new Gauge({
    name: 'snapferry_waiting_needed_free_bytes',
    help: 'Free space the receives that wait for space need (compare snapferry_free_bytes)',
    labelNames: byClient,
    registers,
  });
  const orphans = new Gauge({ name: 'snapferry_orphaned_spools', help: 'Spools of transfers that are over (a failed one keeps its spool until aborted or expired)', labelNames: byClient, registers });
  const orphanBytes = new Gauge({ name: 'snapferry_orphaned_spool_bytes', help: 'Bytes of the spools of transfers that are over', labelNames: byClient, registers });

  for (const client of clients) {
    const facts = await service.clientFacts(client);
    for (const { name: volume, snapshots: held } of facts.volumes) {
      const labels = { client, volume };
      snapshots.set(labels, held.length);
      altered.set(labels, held.filter((s) => s.altered !== null).length);
      snapshotBytes.set(labels, held.reduce((n, s) => n + s.rawBytes, 0));
      const last = Math.max(...held.map((s) => Date.parse(s.receivedAt)).filter(Number.isFinite));
      if (Number.isFinite(last)) newest.set(labels, last / 1000);
    }
    const mine = facts.transfers.map((f) => f.record);
    // Every state, zeros included: a series that is absent cannot be told from one that is 0.
    const failedByCode = Object.entries(facts.unlisted?.failedByCode ?? {});
    const unlisted: Partial<Record<string, number>> = { aborted: facts.unlisted?.aborted ?? 0, failed: failedByCode.reduce((n, [, count]) => n + count, 0) };
    for (const state of transferStates) transfers.set({ client, state }, mine.filter((t) => t.state === state).length + (unlisted[state] ?? 0));
    for (const [code, count] of failedByCode) if (count > 0) failed.inc({ client, code }, count);
    for (const counter of [uploaded, received, interruptions, receiveFailures]) counter.inc({ client }, 0);
    for (const gauge of [spool, receiving, waitingRaw, neededFree]) gauge.set({ client }, 0);
    const orphaned = facts.orphanedSpools;
    orphans.set({ client }, orphaned.length);
    orphanBytes.set({ client }, orphaned.reduce((n, o) => n + o.bytes, 0));
    for (const { record: t, wireBytes, spoolBytes, rawReceived } of facts.transfers) {
      uploaded.inc({ client }, wireBytes);
      if (t.state === 'received') received.inc({ client }, t.rawBytes ?? 0);
      interruptions.inc({ client }, t.interruptions);
      if (t.state === 'failed') {
        failed.inc({ client, code: t.error?.code ?? 'unknown' });
        // The final figures are recorded when the end frame verifies, just before the receive: a failed transfer
        // that has them failed in (or after) its receive; one without them failed while it was uploading.
        if (t.framesVerified !== null) receiveFailures.inc({ client });
      }
      spool.inc({ client }, spoolBytes);
      receiving.inc({ client }, rawReceived);
      if (waitingStates.includes(t.state)) {
        waitingRaw.inc({ client }, t.rawBytes ?? 0);
        neededFree.inc({ client }, t.wait?.neededBytes ?? 0);
      }
    }
  }
}
