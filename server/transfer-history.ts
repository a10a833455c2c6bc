/**
 * How long the catalog remembers transfers that are over (received, failed, aborted), issue 17: the catalog is one
 * file written whole on every change, and a client that created and aborted uploads in a loop grew it without end.
 * An ended transfer is only history: `status` shows the last error and the spools kept, a push that lost the answer
 * to its last request looks up whether its snapshot arrived, minutes later at most. What a next push needs (the
 * received snapshots, their parents) is in the catalog's snapshot records, which are never forgotten here.
 */
import { finalStates, type TransferState } from '../core/protocol.ts';

export interface TransferHistory {
  /** An ended transfer is forgotten this long after its last change (its spool gone). */
  keepForMs: number;
  /** And at most this many ended transfers are kept per client, the newest. */
  maxPerClient: number;
}

export const DEFAULT_TRANSFER_HISTORY: Readonly<TransferHistory> = Object.freeze({ keepForMs: 7 * 86_400_000, maxPerClient: 1000 });

/** What the choice needs to know of a transfer. */
export interface TransferFacts {
  id: string;
  client: string;
  state: TransferState;
  updatedAt: string;
}

/**
 * Pure: the ids of the ended transfers to forget now: older than keepForMs, or past the client's newest
 * maxPerClient ended ones. Never one whose spool is still on disk: its record is what counts that spool against its
 * client's quota and open uploads, and what lets the client abort it.
 */
export function endedToForget(transfers: readonly TransferFacts[], nowMs: number, history: TransferHistory, holdsSpool: (id: string) => boolean): string[] {
  const byClient = new Map<string, TransferFacts[]>();
  for (const t of transfers) {
    if (!finalStates.includes(t.state)) continue;
    byClient.set(t.client, [...(byClient.get(t.client) ?? []), t]);
  }
  const out: string[] = [];
  for (const ended of byClient.values()) {
    ended.sort((a, b) => b.updatedAt.localeCompare(a.updatedAt));
    ended.forEach((t, rank) => {
      const old = nowMs - Date.parse(t.updatedAt) >= history.keepForMs;
      if ((old || rank >= history.maxPerClient) && !holdsSpool(t.id)) out.push(t.id);
    });
  }
  return out;
}
