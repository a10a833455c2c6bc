/**
 * The spools nothing will read again, found and deleted now and then (server/orphan-spools.ts decides which and
 * when), and the ended transfers the catalog has kept long enough, forgotten (server/transfer-history.ts).
 */
import type { Catalog } from './catalog.ts';
import type { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import { dueForDeletion, orphansAmong, spoolsOnDisk, type OrphanedSpool } from './orphan-spools.ts';
import { runEvery, type Periodic } from './periodic.ts';
import { endedToForget, type TransferHistory } from './transfer-history.ts';

export interface SpoolSweepDeps {
  layout: ServerLayout;
  catalog: Catalog;
  log: Logger;
  /** How long a failed transfer keeps its spool (0: until it is aborted). */
  keepFailedMs: number;
  history: Readonly<TransferHistory>;
  /** Deletes an upload's files and what the store counted of it. */
  dropSpool(id: string): Promise<void>;
}

export class SpoolSweep {
  private timer: Periodic | null = null;

  constructor(private readonly deps: SpoolSweepDeps) {}

  /** Spools that nothing will read again, of one client's transfers or of all. */
  async orphaned(client?: string): Promise<OrphanedSpool[]> {
    const all = orphansAmong(await spoolsOnDisk(this.deps.layout), (id) => this.deps.catalog.transfer(id));
    return client === undefined ? all : all.filter((o) => o.client === client);
  }

  /** Deletes the orphaned spools that are due (those of failed transfers after the expiry period, others at once), then forgets old transfers. */
  async sweep(): Promise<void> {
    const { log } = this.deps;
    for (const o of dueForDeletion(await this.orphaned(), Date.now(), this.deps.keepFailedMs)) {
      await this.deps.dropSpool(o.id);
      log.info({ transfer: o.id, client: o.client, state: o.state, freedBytes: o.bytes }, 'orphaned spool deleted');
    }
    await this.forgetEnded();
  }

  /** Sweeps every `ms` from now on. */
  start(ms: number): void {
    this.timer ??= runEvery(ms, () => this.sweep(), (err) => this.deps.log.error({ err }, 'could not sweep orphaned spools; trying again at the next sweep'));
  }

  async stop(): Promise<void> {
    await this.timer?.stop();
  }

  /** Forgets the ended transfers the catalog has kept long enough, their spools gone. */
  private async forgetEnded(): Promise<void> {
    const { catalog, log } = this.deps;
    const spooled = new Set((await spoolsOnDisk(this.deps.layout)).map((s) => s.id));
    const ids = endedToForget(catalog.transfers(), Date.now(), this.deps.history, (id) => spooled.has(id));
    if (ids.length === 0) return;
    await catalog.forgetTransfers(new Set(ids));
    log.info({ forgotten: ids.length }, 'forgot transfers that ended long enough ago');
  }
}
