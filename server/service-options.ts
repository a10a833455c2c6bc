/** How the replication service (server/replication.ts) is set up; server/serve.ts fills it from the config. */
import type { CatalogWriter } from './catalog.ts';
import type { PrivilegedFiles } from './mount-safety.ts';
import type { PruneRetry, RetentionLookup } from './retention.ts';
import type { RetrySchedule } from './receive-wait.ts';
import type { TransferHistory } from './transfer-history.ts';
import type { UploadLimits } from './upload-limits.ts';

export interface ServiceOptions {
  /** Start no receive until resumeReceives(). */
  holdReceives?: boolean;
  /** Abandoned uploads (no request for this long) are deleted and their transfers failed (server/expiry.ts); 0 never. */
  expireAfterMs?: number;
  /** How long an upload stays reserved for the push that last touched it (server/leases.ts). */
  leaseMs?: number;
  /** Per client: bytes its uploads may hold, how many may be open, how fast it may create them (server/upload-limits.ts). */
  limits?: Partial<UploadLimits>;
  /** How long, and how many per client, the catalog keeps transfers that are over (server/transfer-history.ts). */
  endedTransfers?: Partial<TransferHistory>;
  /**
   * Device nodes and setuid/setgid files (and file capabilities) in received streams. 'allow' (default) receives
   * them as they are, a faithful backup, and warns at start when the volumes' mount is not nosuid,nodev, which is
   * what makes them inert; 'inert-mount' refuses to start unless it is; 'refuse' refuses streams that carry them.
   */
  privilegedFiles?: PrivilegedFiles;
  /** Each received volume's retention policy (server/retention.ts), applied after each receive and at start. */
  retention?: RetentionLookup;
  /** When a volume whose pruned snapshot could not be deleted is pruned again (server/retention.ts); tests shorten it. */
  pruneRetry?: Partial<PruneRetry>;
  /** When a receive that failed for the server's own reasons runs again (server/receive-wait.ts); tests shorten it. */
  receiveRetry?: Partial<RetrySchedule>;
  /** How the catalog file is written (default core/durable-file.ts); tests make one write fail as a full disk does. */
  catalogWriter?: CatalogWriter;
}
