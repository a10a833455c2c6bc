/**
 * `snapferry abort ID`: throws away a transfer that is not being received (an upload in progress, or a whole stream
 * waiting for its receive), or deletes the spool a transfer that is over still holds on the server (a failed one
 * keeps it; `status` lists them). ID is the transfer's id or a prefix of it that names one, as `status` shows it.
 */
import { ValidationError } from '../../core/errors.ts';
import { inProgress, type Transfer } from '../../core/protocol.ts';
import type { ServerApi } from '../http/api.ts';
import { formatBytes } from '../progress/format.ts';

/** The shortest prefix accepted: `status` shows eight hex digits. */
const MIN_PREFIX = 4;

export async function abortTransfer(api: ServerApi, given: string): Promise<string> {
  const id = given.trim().toLowerCase();
  if (!/^[0-9a-f]+$/.test(id) || id.length < MIN_PREFIX) {
    throw new ValidationError(`${JSON.stringify(given)} is not a transfer id: give its hex digits as \`snapferry status\` shows them (at least ${MIN_PREFIX})`);
  }
  const matches = (await api.transfers()).transfers.filter((t) => t.id.startsWith(id));
  // A mistake, not a wait: a transfer that ended stays listed until it is forgotten, and no rerun brings one back.
  if (matches.length === 0) throw new ValidationError(`no transfer ${id} on the server: \`snapferry status\` lists the transfers in flight and those that kept a spool`);
  if (matches.length > 1) {
    throw new ValidationError(`${id} names ${matches.length} transfers (${matches.map((t) => t.id).join(', ')}): give more of the id`);
  }
  const before = matches[0]!;
  const after = await api.abort(before.id);
  return describeAbort(before, after);
}

/** Pure: what an abort did, from the transfer before and after it. */
export function describeAbort(before: Transfer, after: Transfer): string {
  const what = `transfer ${before.id} (${before.volume}/${before.snapshot})`;
  const gone = before.spoolBytes - after.spoolBytes;
  const freed = gone > 0 ? `; deleted its spool (${formatBytes(gone)})` : '';
  if (inProgress(before.state)) return `aborted ${what}, which was ${before.state}${freed}`;
  if (freed !== '') return `${what} was ${before.state}${freed}`;
  return `${what} was ${before.state} and held no spool: nothing to do`;
}
