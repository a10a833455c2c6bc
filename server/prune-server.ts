/**
 * `snapferry prune-server`: the server's retention applied by hand, while no server runs on the root (a server
 * applies it itself, after each receive and at start). It holds the root's lock while it works (server/root-lock.ts):
 * refused while a server holds the root, and no server can start on it meanwhile, so the catalog has one writer at a
 * time. With --dry-run it only reads (`describeServerRetention`), which needs no lock.
 */
import { Catalog } from './catalog.ts';
import { ServerLayout } from './layout.ts';
import type { Logger } from './log.ts';
import { catalogVolumes, describeServerPlans, ServerPruner, type RetentionLookup } from './retention.ts';
import { assertRootExists, lockRoot } from './root-lock.ts';

export interface PruneResult {
  /** What each volume's policy decided, as `--dry-run` shows it. */
  plan: string[];
  /** Snapshots deleted, as CLIENT/VOLUME/NAME. */
  deleted: string[];
}

/**
 * What each volume's policy would delete and why each snapshot is kept, as `prune-server --dry-run` shows it.
 * Reads only: safe beside a running server, which may change the catalog under it (it then shows a moment ago).
 */
export async function describeServerRetention(root: string, retention: RetentionLookup): Promise<string[]> {
  // A root that is not there is said as the real run says it, not as a root that holds no snapshots.
  await assertRootExists(root);
  const catalog = await Catalog.open(new ServerLayout(root).catalog);
  return describeServerPlans(catalog, retention);
}

export async function pruneServerRoot(root: string, retention: RetentionLookup, log: Logger): Promise<PruneResult> {
  const lock = await lockRoot(root, 'snapferry prune-server');
  try {
    const layout = new ServerLayout(root);
    const catalog = await Catalog.open(layout.catalog);
    const plan = describeServerPlans(catalog, retention, new Date(), false);
    const pruner = new ServerPruner(layout, catalog, log, retention);
    const deleted: string[] = [];
    for (const [client, volume] of catalogVolumes(catalog)) {
      for (const name of await pruner.pruneVolume(client, volume)) deleted.push(`${client}/${volume}/${name}`);
    }
    return { plan, deleted };
  } finally {
    await lock.release();
  }
}
