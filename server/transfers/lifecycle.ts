/**
 * A transfer's life after its upload began: its receive running beside the upload (server/live-receives.ts), the
 * retries of a receive that failed for the server's own reasons (server/receive-retries.ts), and the steps the
 * transfer machine decides (server/transfers/machine.ts), run on them (server/transfers/steps.ts). The service
 * hands every event here; nothing here decides what an event means.
 */
import type { Catalog, TransferRecord } from '../catalog.ts';
import { SnapferryError } from '../../core/errors.ts';
import { isDiskFull } from '../disk-full.ts';
import type { ServerLayout } from '../layout.ts';
import type { Logger } from '../log.ts';
import type { PrivilegedFiles } from '../mount-safety.ts';
import type { SpoolProgress } from '../spool/spool.ts';
import type { ServerPruner } from '../retention.ts';
import type { RetrySchedule } from '../receive-wait.ts';
import type { ReceiveJob } from '../receiver.ts';
import { LiveReceives } from '../live-receives.ts';
import { filesystemSize } from '../filesystem-size.ts';
import { ReceiveRetries } from '../receive-retries.ts';
import { toDiskMap } from '../uuid-namespace.ts';
import { othersInFolder } from '../volume-folder.ts';
import { parentEntries } from '../../core/receive/parent-entries.ts';
import type { SafeName } from '../../core/names.ts';
import { assertUuidFree } from './creation.ts';
import * as machine from './machine.ts';
import { receiveJobFor } from './receive-job.ts';
import { runSteps, type StepRunner } from './steps.ts';

export interface LifecycleDeps {
  layout: ServerLayout;
  catalog: Catalog;
  log: Logger;
  /** The verified spool: its progress, and a cut back to its first frames. */
  spool: { progress(id: string): Promise<SpoolProgress>; rewind(id: string, frames: number): Promise<unknown> };
  pruner: Pick<ServerPruner, 'pruneVolume'>;
  privilegedFiles: PrivilegedFiles;
  freeBytes(): Promise<number | null>;
  spoolBytes(id: string): Promise<number>;
  dropSpool(id: string): Promise<void>;
  holdReceives: boolean;
  retry: RetrySchedule;
}

export class TransferLifecycle {
  readonly receives: LiveReceives;
  readonly retries: ReceiveRetries;
  private readonly steps: StepRunner;

  constructor(private readonly deps: LifecycleDeps) {
    const { layout, catalog, log } = deps;
    this.receives = new LiveReceives(layout, {
      jobFor: (id) => this.receiveJob(id),
      progressOf: (id) => deps.spool.progress(id),
      received: (id, got) => this.run(id, machine.onReceived(catalog.transfer(id), got, new Date().toISOString(), catalog.transfers())),
      failed: (id, err) => this.run(id, machine.onReceiveFailed(catalog.transfer(id), err, new Date().toISOString())),
    }, log, deps.holdReceives);
    // Whatever ends a transfer without a snapshot (an expiry, a refused stream, an abort) ends its
    // receive, and the catalog's change is done only once the receive is stopped and its partial subvolume deleted.
    // Never from inside a run's own `received` hook (the run is still listed there, and stop waits for the hook):
    // onReceived records only `received`, and `failed` is called once the run is no longer listed.
    catalog.onTransferEnd((t) => this.receives.stop(t.id, `the transfer ${t.state}${t.error ? `: ${t.error.message}` : ''}`));
    this.retries = new ReceiveRetries({
      catalog, log,
      freeBytes: () => deps.freeBytes(),
      filesystem: () => filesystemSize(layout.root),
      spoolBytes: (id) => deps.spoolBytes(id),
      root: layout.root,
      startFromSpool: (id) => this.receives.startFromSpool(id),
      startLater: (id, ms) => this.receives.restartLater(id, ms),
    }, deps.retry);
    this.steps = {
      catalog, log,
      stopReceive: (id, why) => this.receives.stop(id, why),
      restartReceive: (id, why) => this.receives.restart(id, why),
      rewindSpool: async (id, frames) => void (await deps.spool.rewind(id, frames)),
      spoolBytes: (id) => deps.spoolBytes(id),
      dropSpool: (id) => deps.dropSpool(id),
      forgetRetries: (id) => this.retries.forget(id),
      retryLater: (s) => this.retries.failed(s.transfer, s.fault, s.error),
      prune: async (client, volume) => void (await deps.pruner.pruneVolume(client, volume)),
    };
  }

  /** Runs the steps the transfer machine decided for transfer `id`. */
  run(id: string, steps: readonly machine.Step[]): Promise<void> {
    return runSteps(id, steps, this.steps);
  }

  /**
   * The end frame of `id` verified but the catalog could not record the move to `receiving` (`change`), for `err`.
   * Its receive, which ran beside the upload and waited for that record, stops and deletes what it wrote: on a full
   * disk that room is what the record needs. Then the move is recorded as soon as it can be, and the stream waits as
   * one whose receive failed the same way (server/receive-retries.ts endNotRecorded).
   */
  async endNotRecorded(id: string, change: Partial<TransferRecord>, err: unknown): Promise<void> {
    const full = isDiskFull(err);
    const said = err instanceof Error ? err.message : String(err);
    const why = full
      ? `the server's disk is full: the whole stream is in its spool, but the end of the upload could not be recorded (${said}); ` +
        'free space on the server, and it records it and receives the stream by itself'
      : `could not record the end of the upload: ${said}`;
    this.deps.log.warn({ transfer: id, err }, full ? 'disk full: could not record the end of the upload; its receive stops and gives its room to the record' : why);
    await this.receives.stop(id, why);
    await this.retries.endNotRecorded(id, change, full ? 'disk_full' : 'server_fault', new SnapferryError('end_not_recorded', why, { cause: err, retryable: true }));
  }

  /** At start: every transfer in progress whose parent was found changed by hand fails (machine.failOnAlteredParent). */
  async failOnAlteredParents(): Promise<void> {
    const { catalog } = this.deps;
    for (const t of catalog.transfers()) {
      const parent = catalog.snapshots(t.client, t.volume).find((s) => s.uuid === t.parentUuid);
      await this.run(t.id, machine.failOnAlteredParent(t, parent, new Date().toISOString()));
    }
  }

  /** What the receive of a transfer must check, or null when it is not to be received (server/transfers/receive-job.ts). */
  private receiveJob(id: string): ReceiveJob | null {
    const { catalog } = this.deps;
    const t = catalog.transfer(id);
    if (!t) return null;
    const volumeSnapshots = catalog.snapshots(t.client, t.volume);
    const parent = volumeSnapshots.find((s) => s.uuid === t.parentUuid);
    return receiveJobFor(t, {
      volumeSnapshots,
      ...(parent ? { parentEntries: parentEntries(this.deps.layout.snapshotPath(t.client as SafeName, t.volume as SafeName, parent.name as SafeName)) } : {}),
      privilegedFiles: this.deps.privilegedFiles,
      toDisk: toDiskMap(catalog, t.client),
      confirm: () => assertUuidFree(catalog.snapshots(t.client), t.volume, t.uuid),
      othersNames: () => othersInFolder(catalog, this.deps.layout, t.client, t.volume, t.id, (other) => this.receives.isReceiving(other)),
    });
  }
}
