/**
 * Progress as text: sizes, and the one line that both the terminal view and the log view print, e.g.
 * `home.20261125  412.3 MiB / ~1.6 GiB raw  (25%)  180.2 MiB sent  2.29x  1.9 MiB/s  ETA 10m32s`.
 */
import { formatDuration } from './math.ts';
import type { ProgressFigures } from './figures.ts';

export function formatBytes(n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v.toFixed(u === 0 ? 0 : 1)} ${units[u]}`;
}

/**
 * The bytes shown as sent (or downloaded) are this run's: after a resume, what the server (or the spool) already held
 * is shown apart, since this run only hashed it. The rate shown is the wire rate, what the link carries (the figure to hold against --limit-rate or the line's
 * speed); the ETA comes from the raw rate, since the total is in raw bytes. Unknown figures are left out, but for the
 * total, which is said to be unknown: a line without it read as if the bytes so far were all there is.
 */
export function formatProgress(f: ProgressFigures): string {
  const parts = [f.snapshot];
  if (f.rawTotal === null) parts.push(`${formatBytes(f.rawBytes)} raw (size unknown)`);
  else {
    const percent = f.rawTotal > 0 ? Math.min(100, Math.floor((f.rawBytes / f.rawTotal) * 100)) : 100;
    parts.push(`${formatBytes(f.rawBytes)} / ${f.rawTotalExact ? '' : '~'}${formatBytes(f.rawTotal)} raw  (${percent}%)`);
  }
  const moved = `${formatBytes(Math.max(0, f.wireBytes - f.wireBytesBefore))} ${f.direction === 'download' ? 'downloaded' : 'sent'}`;
  parts.push(f.wireBytesBefore > 0 ? `${moved} (+${formatBytes(f.wireBytesBefore)} from an earlier run)` : moved);
  if (f.ratio !== null) parts.push(`${f.ratio.toFixed(2)}x`);
  if (f.wireBytesPerSecond !== null) parts.push(`${formatBytes(f.wireBytesPerSecond)}/s`);
  if (f.etaSeconds !== null) parts.push(`ETA ${formatDuration(f.etaSeconds)}`);
  return parts.join('  ');
}
