/**
 * snapper's layout: `.snapshots/N/snapshot` is the snapshot (read-only unless made with --read-write), and
 * `.snapshots/N/info.xml` beside it describes it; its <date> is when the snapshot was taken, in UTC
 * ("2026-11-01 01:00:00", snapper's Snapper/AppUtil.cc datetime()). Only the date is read here.
 */
import fs from 'node:fs/promises';
import path from 'node:path';

/** snapper's subvolume under each numbered folder. */
export const SNAPPER_SNAPSHOT = 'snapshot';
const INFO_XML = 'info.xml';

/** Pure: the <date> of an info.xml, or null when it has none that is a real time. */
export function parseSnapperDate(xml: string): Date | null {
  const m = /<date>\s*(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2}):(\d{2})\s*<\/date>/.exec(xml);
  if (!m) return null;
  const [y, mo, d, h, mi, s] = m.slice(1).map(Number) as [number, number, number, number, number, number];
  const time = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  const back = [time.getUTCFullYear(), time.getUTCMonth() + 1, time.getUTCDate(), time.getUTCHours(), time.getUTCMinutes(), time.getUTCSeconds()];
  return back.every((v, i) => v === [y, mo, d, h, mi, s][i]) ? time : null;
}

/** The date in `N/info.xml` beside the snapshot `N/snapshot`; null when there is no readable one. */
export async function snapperDate(snapshotPath: string): Promise<Date | null> {
  const xml = await fs.readFile(path.join(path.dirname(snapshotPath), INFO_XML), 'utf8').catch(() => null);
  return xml === null ? null : parseSnapperDate(xml);
}

/** A snapper snapshot's name: its number, the folder that holds it (every one of them is called `snapshot`). */
export function snapperName(snapshotPath: string): string | null {
  return path.basename(snapshotPath) === SNAPPER_SNAPSHOT ? path.basename(path.dirname(snapshotPath)) : null;
}
