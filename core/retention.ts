/**
 * Which snapshots a retention policy keeps and which it deletes. Pure: the caller gathers the snapshots, their
 * times and what must be protected; this decides, with every kept snapshot's reasons for `--dry-run` to show.
 *
 * The rule, after btrbk's preserve policies (btrbk.conf(5), RETENTION POLICY), in UTC so that no daylight-saving
 * change ever moves a snapshot from one day to another:
 * - `last: N` keeps the newest N snapshots, whatever their age.
 * - `hourly: N` keeps the first (oldest) snapshot of each UTC hour, for the newest N hours that have a snapshot.
 * - `daily: N`: the first snapshot of each UTC day, for the newest N days that have one.
 * - `weekly: N`: the first snapshot of each ISO 8601 week (Monday to Sunday), for the newest N weeks that have one.
 *   As in btrbk, that is the first daily snapshot of the week.
 * - `monthly: N`: as in btrbk, "every first weekly backup in a month": of the weekly snapshots (the first of each
 *   week), the first one that falls in each UTC month, for the newest N such months. A month that begins mid-week
 *   is represented by its first Monday's week, so every monthly snapshot is also a weekly and a daily one, and
 *   the kept set stays nested (a snapshot kept for a long period was kept for every shorter one before).
 * - A snapshot is kept when any rule keeps it; the rest are deleted.
 *
 * Where we differ from btrbk: btrbk counts N calendar periods back from now ("7d" = the last 7 days); here N counts
 * periods that hold a snapshot (as restic's and borg's keep-daily do, and as core/retention-policy.ts documents).
 * So a laptop that was off for a month, or a server whose client stopped pushing, keeps its history until newer
 * snapshots take its place: time passing alone never deletes a backup.
 *
 * Whatever the policy says, these are always kept: the ones in `protect` (the caller's reasons: the newest snapshot
 * both sides hold, the parent of an upload in progress, ...) and any dated after `now` (a clock that was wrong),
 * which also take no part in the counting. An empty policy keeps everything.
 *
 * Because the representative of each period is its first snapshot and periods only ever leave the newest-N window
 * as newer ones arrive, pruning every hour keeps exactly what pruning once at the end would (a unit test says so).
 */
import { prunes, type RetentionPolicy } from './retention-policy.ts';

export interface DatedSnapshot {
  name: string;
  time: Date;
}

export interface KeptSnapshot {
  name: string;
  time: Date;
  /** Every reason it is kept, for people: "daily 2026-03-01", "newest snapshot both sides hold", ... */
  reasons: string[];
}

export interface RetentionPlan {
  /** Oldest first. */
  keep: KeptSnapshot[];
  /** Oldest first. */
  delete: { name: string; time: Date }[];
}

type Period = 'hourly' | 'daily' | 'weekly' | 'monthly';

const pad = (n: number, width = 2): string => String(n).padStart(width, '0');

function hourKey(t: Date): string {
  return `${dayKey(t)}T${pad(t.getUTCHours())}`;
}

function dayKey(t: Date): string {
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}-${pad(t.getUTCDate())}`;
}

/** ISO 8601 week: weeks start on Monday; week 1 is the one holding the year's first Thursday. */
export function isoWeekKey(t: Date): string {
  const day = Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate());
  const weekday = (t.getUTCDay() + 6) % 7; // Monday 0 .. Sunday 6
  const thursday = new Date(day + (3 - weekday) * 86_400_000);
  const year = thursday.getUTCFullYear();
  const week = 1 + Math.floor((thursday.getTime() - Date.UTC(year, 0, 1)) / (7 * 86_400_000));
  return `${year}-W${pad(week)}`;
}

function monthKey(t: Date): string {
  return `${t.getUTCFullYear()}-${pad(t.getUTCMonth() + 1)}`;
}

/** The first snapshot of each period, in time order (the input is sorted oldest first). */
function firstOf(sorted: readonly DatedSnapshot[], key: (t: Date) => string): Map<string, DatedSnapshot> {
  const first = new Map<string, DatedSnapshot>();
  for (const s of sorted) {
    const k = key(s.time);
    if (!first.has(k)) first.set(k, s);
  }
  return first;
}

const byTime = (a: DatedSnapshot, b: DatedSnapshot): number =>
  a.time.getTime() - b.time.getTime() || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function planRetention(
  snapshots: readonly DatedSnapshot[],
  policy: RetentionPolicy,
  protect: ReadonlyMap<string, string>,
  now: Date,
): RetentionPlan {
  const sorted = [...snapshots].sort(byTime);
  const reasons = new Map<string, string[]>(sorted.map((s) => [s.name, []]));
  const why = (name: string, reason: string): void => void reasons.get(name)?.push(reason);

  for (const [name, reason] of protect) why(name, reason);
  if (!prunes(policy)) {
    for (const s of sorted) why(s.name, 'no retention policy: everything is kept');
  }
  const future = sorted.filter((s) => s.time.getTime() > now.getTime());
  for (const s of future) why(s.name, `dated ${s.time.toISOString()}, after now: is a clock wrong?`);
  const counted = sorted.filter((s) => s.time.getTime() <= now.getTime());

  if (policy.last !== undefined && policy.last > 0) {
    for (const s of counted.slice(-policy.last)) why(s.name, `one of the last ${policy.last}`);
  }
  const hours = firstOf(counted, hourKey);
  const days = firstOf(counted, dayKey);
  const weeks = firstOf(counted, isoWeekKey);
  // btrbk: "every first weekly backup in a month is considered a monthly backup".
  const months = firstOf([...weeks.values()], monthKey);
  const periods: [Period, Map<string, DatedSnapshot>, string][] = [
    ['hourly', hours, 'first of the hour'],
    ['daily', days, 'first of the day'],
    ['weekly', weeks, 'first of the week'],
    ['monthly', months, 'first weekly snapshot of the month'],
  ];
  for (const [period, firsts, what] of periods) {
    const n = policy[period];
    if (n === undefined || n === 0) continue;
    // Maps keep insertion order, which is time order: the newest N periods are the last N entries.
    for (const [key, s] of [...firsts].slice(-n)) why(s.name, `${period} ${key} (${what})`);
  }

  const keep: KeptSnapshot[] = [];
  const remove: RetentionPlan['delete'] = [];
  for (const s of sorted) {
    const r = reasons.get(s.name) ?? [];
    if (r.length > 0) keep.push({ name: s.name, time: s.time, reasons: r });
    else remove.push({ name: s.name, time: s.time });
  }
  return { keep, delete: remove };
}

/** One line per snapshot, oldest first, for `--dry-run` and logs: `delete NAME` or `keep   NAME  (reasons)`. */
export function describePlan(plan: RetentionPlan): string[] {
  const lines = [
    ...plan.keep.map((k) => ({ time: k.time.getTime(), line: `keep   ${k.name}  (${k.reasons.join('; ')})` })),
    ...plan.delete.map((d) => ({ time: d.time.getTime(), line: `delete ${d.name}` })),
  ];
  return lines.sort((a, b) => a.time - b.time).map((l) => l.line);
}
