/**
 * `push --dry-run` as text: one line per snapshot that would be sent, in order, with its parent and the estimated
 * size of its raw send stream (`btrfs send --no-data`; compression on the line makes the upload smaller).
 */
import type { PlannedSend } from './push.ts';
import { formatBytes } from '../progress/format.ts';

export function describePlanned(prefix: string, planned: readonly PlannedSend[]): string {
  if (planned.length === 0) return `${prefix}nothing to send: the server holds every snapshot given\n`;
  const lines = planned.map((p) => {
    const how = p.parent === null ? 'full' : `incremental from ${p.parent}`;
    // `run --dry-run`'s snapshot to take: nothing to estimate from yet.
    if (p.toBeTaken === true) return `${prefix}would send ${p.snapshot} once taken (${how}), size unknown until then`;
    const size = p.rawBytes === null ? 'size unknown' : `about ${formatBytes(p.rawBytes)} raw`;
    return `${prefix}would send ${p.snapshot} (${how}), ${size}`;
  });
  const total = planned.every((p) => p.rawBytes !== null) ? `, about ${formatBytes(planned.reduce((n, p) => n + p.rawBytes!, 0))} raw in all` : '';
  return `${lines.join('\n')}\n${prefix}${planned.length} snapshot(s) would be sent${total}; nothing was sent (--dry-run)\n`;
}
