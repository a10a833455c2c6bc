/**
 * A retention policy as the config files write it (client volumes and server volumes alike), in the manner of
 * btrbk's preserve policies: the newest `last` snapshots, plus one per hour, day, week and month for the newest so
 * many of each. Unset counts keep nothing on their own; an empty policy keeps everything (nothing is ever pruned
 * by accident of a missing key). The planner that applies it is core/retention.ts.
 */
import { z } from 'zod';

const count = z.number().int().min(0);

export const RetentionPolicy = z
  .object({
    /** The newest N snapshots, whatever their age. */
    last: count.optional(),
    /** One snapshot for each of the newest N hours that have one (the oldest of that hour, as btrbk). */
    hourly: count.optional(),
    daily: count.optional(),
    /** Weeks start on Monday (ISO 8601). */
    weekly: count.optional(),
    monthly: count.optional(),
  })
  .strict();
export type RetentionPolicy = z.infer<typeof RetentionPolicy>;

/** Whether the policy says anything at all: an empty one prunes nothing. */
export function prunes(policy: RetentionPolicy): boolean {
  return Object.values(policy).some((n) => n !== undefined);
}
