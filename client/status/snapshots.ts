/**
 * `snapferry snapshots [--volume V]`: what the server holds of this client's volumes, oldest first in each, as text
 * for people or as JSON for scripts (the same rows). Taken is when the snapshot was taken (its name's time, snapper's
 * date, else its btrfs creation time: README, "Snapshot times"), as retention and "newest" count it; a snapshot that
 * was itself received or restored has a creation time of that moment, which would date it wrongly. Received is when
 * the server checked it in. Size is the raw send stream's, unknown for a snapshot the server adopted from its disk
 * (its catalog rebuilt: README, "A damaged catalog"), which it lists as 0.
 */
import { SnapferryError } from '../../core/errors.ts';
import { pushedSizeKnown, type Snapshot } from '../../core/protocol.ts';
import { VOLUME_NOT_ON_SERVER } from '../exit-codes.ts';
import type { ServerApi } from '../http/api.ts';
import { formatBytes } from '../progress/format.ts';

export interface SnapshotRow {
  volume: string;
  name: string;
  /** When the client snapshot was taken (else its creation time), or null where the server knows neither. */
  takenAt: string | null;
  receivedAt: string;
  /** The raw send stream's bytes, or null where the server does not know them (pushedSizeKnown). */
  rawBytes: number | null;
  /** The framed bytes its push sent, or null where the server does not know them. */
  wireBytes: number | null;
  uuid: string;
  parentUuid: string | null;
}

/**
 * --volume that the server holds nothing of (no snapshot, no upload under way). Its snapshot list is empty as an
 * existing volume's can be, and an empty table with exit 0 read as "the server has none of my backups" where the
 * name was mistyped; restore of the same says so (snapshot_not_on_server), and so does this, with the same exit code.
 */
export class VolumeNotOnServer extends SnapferryError {
  constructor(volume: string, held: readonly string[]) {
    const listed = held.length > 0 ? `it holds ${held.join(', ')}` : 'it holds no volume of this client';
    super(
      VOLUME_NOT_ON_SERVER,
      `the server holds nothing of volume ${volume}: no such volume, or nothing received into it yet (${listed}); check --volume`,
      { details: { volume, held: [...held] } },
    );
  }
}

export async function listSnapshots(api: ServerApi, volume?: string): Promise<SnapshotRow[]> {
  const known = (await api.volumes()).volumes.map((v) => v.name);
  // A volume listed with no snapshot (its first upload under way, or all of them pruned) is empty, not unknown.
  if (volume !== undefined && !known.includes(volume)) throw new VolumeNotOnServer(volume, known);
  const volumes = volume !== undefined ? [volume] : known;
  const rows: SnapshotRow[] = [];
  for (const name of volumes) {
    rows.push(...snapshotRows(name, (await api.snapshots(name)).snapshots));
  }
  return rows;
}

/** One volume's rows, oldest taken first (then by arrival). */
export function snapshotRows(volume: string, snapshots: readonly Snapshot[]): SnapshotRow[] {
  const order = (s: Snapshot) => takenAt(s) ?? s.receivedAt;
  return [...snapshots].sort((a, b) => order(a).localeCompare(order(b)) || a.receivedAt.localeCompare(b.receivedAt)).map((s) => row(volume, s));
}

const takenAt = (s: Snapshot): string | null => s.takenAt ?? s.createdAt ?? null;

function row(volume: string, s: Snapshot): SnapshotRow {
  const known = pushedSizeKnown(s);
  return {
    volume, name: s.name, takenAt: takenAt(s), receivedAt: s.receivedAt, rawBytes: known ? s.rawBytes : null, wireBytes: known ? s.wireBytes : null,
    uuid: s.uuid, parentUuid: s.parentUuid,
  };
}

/** `2026-12-05T01:02:03.456Z` as `2026-12-05 01:02:03Z`: to the second is what a person compares. */
const when = (iso: string | null) => (iso === null ? '-' : `${iso.slice(0, 10)} ${iso.slice(11, 19)}Z`);

/** Aligned columns, one snapshot a line. */
export function renderSnapshots(rows: readonly SnapshotRow[]): string {
  const table = [['VOLUME', 'SNAPSHOT', 'TAKEN', 'RECEIVED', 'SIZE'], ...rows.map((r) => [r.volume, r.name, when(r.takenAt), when(r.receivedAt), r.rawBytes === null ? 'unknown' : formatBytes(r.rawBytes)])];
  const widths = table[0]!.map((_, i) => Math.max(...table.map((cells) => cells[i]!.length)));
  return table.map((cells) => cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i]!))).join('  ')).join('\n');
}
