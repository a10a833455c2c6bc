/** `snapferry status`: what the server holds and what is in flight, as a table for people or JSON for scripts. */
import type { Status, Transfer, Volume } from '../core/protocol.ts';
import { formatBytes } from './report.ts';

export interface StatusData {
  status: Status;
  volumes: Volume[];
  transfers: Transfer[];
}

export function renderStatus(d: StatusData): string {
  const lines: string[] = [];
  const free = d.status.freeBytes === null ? 'unknown' : formatBytes(d.status.freeBytes);
  lines.push(`server: snapferry ${d.status.version}, up ${d.status.uptimeSeconds}s, ${free} free`);
  lines.push('');
  lines.push('VOLUME               SNAPSHOTS  NEWEST                         RECEIVED');
  for (const v of d.volumes) {
    lines.push(
      `${v.name.padEnd(20)} ${String(v.snapshots).padStart(9)}  ${(v.newest?.name ?? '-').padEnd(30)} ${v.newest?.receivedAt ?? '-'}`,
    );
  }
  if (d.volumes.length === 0) lines.push('(none)');
  const active = d.transfers.filter((t) => !['received', 'aborted'].includes(t.state));
  lines.push('');
  lines.push('TRANSFER                          VOLUME/SNAPSHOT                STATE       SENT        RAW   FRAMES');
  for (const t of active) {
    lines.push(
      `${t.id.padEnd(33)} ${`${t.volume}/${t.snapshot}`.padEnd(30)} ${t.state.padEnd(11)} ${formatBytes(t.wireOffset).padStart(10)} ${formatBytes(t.rawBytes).padStart(10)} ${String(t.framesVerified).padStart(8)}`,
    );
    if (t.interruptions > 0) lines.push(`  ${t.interruptions} interruption(s), last: ${t.lastInterruption ?? '?'}`);
    if (t.error) lines.push(`  error: ${t.error.message}`);
  }
  if (active.length === 0) lines.push('(none in flight)');
  const recent = d.transfers.filter((t) => t.state === 'received').sort((a, b) => b.updatedAt.localeCompare(a.updatedAt)).slice(0, 5);
  if (recent.length > 0) {
    lines.push('', 'RECENTLY RECEIVED');
    for (const t of recent) {
      const cuts = t.interruptions === 0 ? 'no interruption' : `${t.interruptions} interruption(s), last: ${t.lastInterruption ?? '?'}`;
      lines.push(`${`${t.volume}/${t.snapshot}`.padEnd(30)} ${formatBytes(t.wireOffset).padStart(10)} on the wire, ${cuts}`);
    }
  }
  return lines.join('\n');
}
