/** GET /v1/status: the server's health and counts, and which send stream versions its btrfs receive reads. */
import { z } from 'zod';

export const Status = z.object({
  service: z.literal('snapferry'),
  version: z.string(),
  uptimeSeconds: z.number(),
  freeBytes: z.number().nullable(),
  volumes: z.number(),
  snapshots: z.number(),
  transfers: z.record(z.string(), z.number()),
  /** Send stream versions the server's `btrfs receive` reads; a server that does not say reads version 1 only. */
  receiveStreamVersions: z.array(z.number().int()).default([1]),
  /** Spools of transfers that are over (failed ones keep theirs): how many, and their bytes. */
  orphanedSpools: z.object({ count: z.number(), bytes: z.number() }).default({ count: 0, bytes: 0 }),
});
export type Status = z.infer<typeof Status>;
