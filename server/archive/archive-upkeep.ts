/**
 * The archive's upkeep, run by every instance at start and every so often (docs/archive.md, "Upkeep"): each
 * volume's retention (archive-retention.ts), which also finishes chains another instance left marked or half
 * deleted, then the sweep of ended and abandoned uploads (upload-sweep.ts). Any instance may run it at any time,
 * beside the others: what it changes in a catalog it changes by compare-and-swap, and what it deletes it deletes
 * idempotently.
 */
import { describeError } from '../../core/errors.ts';
import { isSafeName, type SafeName } from '../../core/names.ts';
import type { RetentionPolicy } from '../../core/retention-policy.ts';
import type { Logger } from '../log.ts';
import { runEvery, type Periodic } from '../periodic.ts';
import type { ObjectStore } from './object-store.ts';
import type { TransferRecord } from './archive-transfer.ts';
import { pruneLogged } from './archive-retention.ts';
import { sweepUploads, type UploadSweepResult } from './upload-sweep.ts';
import { CATALOG_FOLDER } from './volume-catalog.ts';

/** Each volume's policy (server/config.ts retentionFor, the keys a btrfs server reads). */
export type ArchiveRetentionLookup = (client: string, volume: string) => RetentionPolicy;

/** How often an instance runs the upkeep, when nothing says. */
export const ARCHIVE_UPKEEP_MS = 10 * 60_000;

export interface UpkeepOptions {
  objects: ObjectStore;
  log: Logger;
  retention: ArchiveRetentionLookup;
  /** How long an ended upload's tombstone stays (endedTransfers.keepFor). */
  keepEndedMs: number;
  now?: () => number;
}

export interface UpkeepResult {
  /** Snapshots deleted by retention, as CLIENT/VOLUME/NAME. */
  deleted: string[];
  uploads: UploadSweepResult;
}

export class ArchiveUpkeep {
  private timer: Periodic | null = null;
  private running: Promise<UpkeepResult> | null = null;
  /** Retention passes started after a stream was stored (pruneLater), awaited by stop(). */
  private readonly pruning = new Set<Promise<unknown>>();

  constructor(private readonly options: UpkeepOptions) {}

  /** One pass over the whole archive; a pass asked for while one runs is that one. */
  run(): Promise<UpkeepResult> {
    this.running ??= this.pass().finally(() => {
      this.running = null;
    });
    return this.running;
  }

  /** One volume's retention, after a stream of it was stored (as a btrfs server prunes after each receive). */
  pruneVolume(client: SafeName, volume: SafeName): Promise<string[]> {
    const { objects, log, retention } = this.options;
    return pruneLogged(objects, { client, volume }, retention(client, volume), { log, now: this.now() });
  }

  /** pruneVolume in the background, as a btrfs server prunes after each receive; a failure is only logged. */
  pruneLater(client: SafeName, volume: SafeName): void {
    const pass = this.pruneVolume(client, volume).finally(() => this.pruning.delete(pass));
    this.pruning.add(pass);
  }

  /** A pass now, and one every `everyMs` from now on; a failed pass is logged and the next goes on. */
  start(everyMs: number): void {
    const failed = (err: unknown) => this.options.log.error({ err: describeError(err) }, 'archive upkeep failed; the next pass tries again');
    void this.run().catch(failed);
    this.timer ??= runEvery(everyMs, () => this.run().then(() => undefined), failed);
  }

  async stop(): Promise<void> {
    await this.timer?.stop();
    await this.running?.catch(() => undefined);
    await Promise.all(this.pruning);
  }

  private async pass(): Promise<UpkeepResult> {
    const { objects, log, retention } = this.options;
    const records = new Map<string, TransferRecord | null>();
    const deleted: string[] = [];
    for (const { client, volume } of await catalogs(objects)) {
      const names = await pruneLogged(objects, { client, volume }, retention(client, volume), { log, now: this.now(), records });
      deleted.push(...names.map((n) => `${client}/${volume}/${n}`));
    }
    const uploads = await sweepUploads({ objects, log, keepEndedMs: this.options.keepEndedMs, ...(this.options.now ? { now: this.options.now } : {}) });
    return { deleted, uploads };
  }

  private now(): Date {
    return new Date((this.options.now ?? Date.now)());
  }
}

/** Every volume catalog in the bucket. */
async function catalogs(objects: ObjectStore): Promise<{ client: SafeName; volume: SafeName }[]> {
  const out: { client: SafeName; volume: SafeName }[] = [];
  for await (const o of objects.list(CATALOG_FOLDER)) {
    const m = /^catalog\/([^/]+)\/([^/]+)\.json$/.exec(o.key);
    // Names from the bucket are checked as names before they make keys (an operator's object is passed over).
    if (m && isSafeName(m[1]!) && isSafeName(m[2]!)) out.push({ client: m[1] as SafeName, volume: m[2] as SafeName });
  }
  return out;
}
