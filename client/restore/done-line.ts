/** The line `snapferry restore` ends with, from what the restore did. */
import { formatBytes } from '../progress/format.ts';
import type { RestoreResult } from './restore.ts';

export function describeRestored(result: RestoreResult): string {
  if (!result.restored) return `done: ${result.snapshot} is already at ${result.path}`;
  // A copy an earlier run received and did not finish checking: this run downloaded nothing, and which parent that run
  // took, and how much it received, are that run's to have said.
  const how = result.receivedEarlier
    ? 'received by an earlier run, checked now'
    : `${result.parent ? `incremental from ${result.parent}` : 'full'}, ${formatBytes(result.rawBytes)}`;
  const checked = result.verifiedLineBytes === null ? '' : `, identical to the server's copy (${formatBytes(result.verifiedLineBytes)} on the line to check)`;
  return `done: restored ${result.snapshot} to ${result.path} (${how})${checked}`;
}
